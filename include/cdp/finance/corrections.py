"""Donation corrections: a request that only the finance role may approve or reject.

The rules live in Postgres (``ops.request/approve/reject_donation_correction``, a trigger on
``core.donation``); this module and ``cdp finance correction`` only call those functions as the user's
database login (optionally narrowed with ``SET ROLE``), so a refusal is the database's, whatever the client.
Who requested and who decided is the database login (session_user): ``--by`` is only a name written beside
it in the audit trail, and a request is decided by another login than the one that made it.
"""

from __future__ import annotations

import argparse
import getpass
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from cdp.warehouse import Actor, connect

CORRECTABLE = ("amount_minor", "currency", "fee_minor", "refunded_minor", "status", "campaign")
INTEGER_FIELDS = frozenset({"amount_minor", "fee_minor", "refunded_minor"})


class SuperuserRefused(ValueError):
    """The connection's login is a superuser and no narrower role was named."""


@contextmanager
def acting_as(url: str, person: str, role: str | None) -> Iterator[psycopg.Connection]:
    """A transaction under database role ``role`` (or the login's own), ``person`` written beside the login.

    Never as a superuser: without ``role`` a superuser login is refused, since a correction's checks (who
    may approve, which fields) would be the database's defaults for a superuser, not finance's.
    """
    conn = connect(url, Actor(person))
    try:
        with conn.transaction():
            if role:
                conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
            else:
                me = conn.execute(
                    "SELECT session_user::text AS login, rolsuper FROM pg_roles WHERE rolname = session_user"
                ).fetchone()
                if me["rolsuper"]:
                    raise SuperuserRefused(
                        f"the warehouse login {me['login']} is a superuser: connect as your own login"
                        " (CDP_WAREHOUSE_URL) or name the role to act as with --role"
                    )
            yield conn
    finally:
        conn.close()


def request(
    url: str, financial_transaction_id: str, changes: Mapping[str, Any], reason: str, *, person: str,
    role: str | None = None,
) -> int:  # fmt: skip
    with acting_as(url, person, role) as conn:
        row = conn.execute(
            "SELECT ops.request_donation_correction(%s, %s::jsonb, %s) AS id",
            (financial_transaction_id, json.dumps(dict(changes)), reason),
        ).fetchone()
    return int(row["id"])


def approve(
    url: str, correction_id: int, note: str | None = None, *, person: str, role: str | None = None
) -> str:
    with acting_as(url, person, role) as conn:
        return conn.execute(
            "SELECT ops.approve_donation_correction(%s, %s) AS outcome", (correction_id, note)
        ).fetchone()["outcome"]


def reject(url: str, correction_id: int, note: str, *, person: str, role: str | None = None) -> str:
    with acting_as(url, person, role) as conn:
        return conn.execute(
            "SELECT ops.reject_donation_correction(%s, %s) AS outcome", (correction_id, note)
        ).fetchone()["outcome"]


def list_corrections(
    url: str, *, status: str | None = None, person: str, role: str | None = None
) -> list[dict[str, Any]]:
    with acting_as(url, person, role) as conn:
        return conn.execute(
            "SELECT correction_id, financial_transaction_id, status, requested_by, requested_at, reason, before,"
            " after, decided_by, decided_at, decision_note FROM ops.donation_correction"
            " WHERE %(status)s::text IS NULL OR status = %(status)s ORDER BY correction_id",
            {"status": status},
        ).fetchall()


def parse_changes(pairs: list[str]) -> dict[str, Any]:
    """``amount_minor=4000`` pairs as a correction's new values (amounts stay integer minor units)."""
    changes: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name not in CORRECTABLE:
            raise ValueError(f"{pair!r}: give FIELD=VALUE with FIELD one of {', '.join(CORRECTABLE)}")
        if name in INTEGER_FIELDS:
            if not value.lstrip("-").isdigit():
                raise ValueError(f"{name} is integer minor units (e.g. 4000 for 40.00), not {value!r}")
            changes[name] = int(value)
        else:
            changes[name] = value.upper() if name == "currency" else value
    return changes


def _command(args: argparse.Namespace) -> int:
    from cdp.warehouse import resolve_url

    url = resolve_url()
    person = args.by or getpass.getuser()
    try:
        if args.action == "request":
            correction_id = request(
                url, args.financial_transaction_id, parse_changes(args.set), args.reason, person=person,
                role=args.role,
            )  # fmt: skip
            print(f"correction {correction_id} requested; it waits for approval by the finance role")
        elif args.action in ("approve", "reject"):
            decide = approve if args.action == "approve" else reject
            outcome = decide(url, args.correction_id, args.note, person=person, role=args.role)
            print(f"correction {args.correction_id} {outcome}")
        else:
            rows = list_corrections(url, status=args.status, person=person, role=args.role)
            for row in rows:
                print(
                    f"{row['correction_id']}\t{row['status']}\t{row['financial_transaction_id']}\t"
                    f"{json.dumps(row['before'])} -> {json.dumps(row['after'])}\tby {row['requested_by']}"
                    f"\t{row['reason']}" + (f"\tdecided by {row['decided_by']}" if row["decided_by"] else "")
                )
            print(f"{len(rows)} corrections")
    except ValueError as error:
        print(f"error: {error}")
        return 2
    except psycopg.errors.InsufficientPrivilege as error:
        print(f"refused: {error.diag.message_primary}")
        return 4
    except psycopg.Error as error:
        print(f"error: {error.diag.message_primary or error}")
        return 1
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """``cdp finance correction request|approve|reject|list``."""
    finance = commands.add_parser("finance", help="finance operations: donation corrections")
    areas = finance.add_subparsers(dest="area", required=True)
    correction = areas.add_parser("correction", help="request, approve, reject or list donation corrections")
    actions = correction.add_subparsers(dest="action", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--by",
            help="your name, written in the audit trail beside the database login (default: your OS user)",
        )
        parser.add_argument(
            "--role",
            help="the database role to act as (e.g. cdp_editor, cdp_finance); required when the login is a superuser",
        )
        parser.set_defaults(handler=_command)

    ask = actions.add_parser("request", help="ask for a donation to be corrected")
    ask.add_argument("financial_transaction_id")
    ask.add_argument("--set", action="append", required=True, metavar="FIELD=VALUE",
                     help=f"a new value; FIELD one of {', '.join(CORRECTABLE)} (amounts in minor units)")  # fmt: skip
    ask.add_argument("--reason", required=True, help="why the donation is wrong")
    common(ask)
    for verb in ("approve", "reject"):
        decide = actions.add_parser(verb, help=f"{verb} a requested correction (finance role only)")
        decide.add_argument("correction_id", type=int)
        decide.add_argument("--note", required=verb == "reject", help="the decision's note")
        common(decide)
    show = actions.add_parser("list", help="list corrections")
    show.add_argument("--status", choices=["requested", "applied", "rejected"])
    common(show)
