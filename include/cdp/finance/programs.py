"""Programs tied to funds: which program a course belongs to, and which funds pay for a program, from a date.

Like a donation correction (``corrections``), a change is a request (``ops.request_program_change``) that
the finance role approves or rejects, as another database login than the one that asked; the rules live in
Postgres (sql/definitions/ops/program_change.sql), this module and ``cdp funds`` only call them. What the
mappings give every enrollment, completion and survey response is ``mart.activity_fund``.
"""

from __future__ import annotations

import argparse
import getpass
import json
from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import psycopg

from cdp.finance.corrections import acting_as


def request_course(
    url: str,
    course: str,
    program: str,
    valid_from: date,
    reason: str,
    *,
    person: str,
    role: str | None = None,
) -> int:
    with acting_as(url, person, role) as conn:
        row = conn.execute(
            "SELECT ops.request_program_change('course', %s, %s, NULL, %s, %s) AS id",
            (program, course, valid_from, reason),
        ).fetchone()
    return int(row["id"])


def request_funds(
    url: str, program: str, funds: Mapping[str, Decimal], valid_from: date, reason: str, *, person: str,
    role: str | None = None,
) -> int:  # fmt: skip
    shares = {
        fund: float(share) if share != share.to_integral() else int(share) for fund, share in funds.items()
    }
    with acting_as(url, person, role) as conn:
        row = conn.execute(
            "SELECT ops.request_program_change('funds', %s, NULL, %s::jsonb, %s, %s) AS id",
            (program, json.dumps(shares), valid_from, reason),
        ).fetchone()
    return int(row["id"])


def approve(
    url: str, change_id: int, note: str | None = None, *, person: str, role: str | None = None
) -> str:
    with acting_as(url, person, role) as conn:
        return conn.execute(
            "SELECT ops.approve_program_change(%s, %s) AS outcome", (change_id, note)
        ).fetchone()["outcome"]


def reject(url: str, change_id: int, note: str, *, person: str, role: str | None = None) -> str:
    with acting_as(url, person, role) as conn:
        return conn.execute(
            "SELECT ops.reject_program_change(%s, %s) AS outcome", (change_id, note)
        ).fetchone()["outcome"]


def list_changes(
    url: str, *, status: str | None = None, person: str, role: str | None = None
) -> list[dict[str, Any]]:
    with acting_as(url, person, role) as conn:
        return conn.execute(
            "SELECT change_id, kind, program, course_id, funds, valid_from, status, requested_by, reason, decided_by"
            " FROM ops.program_change WHERE %(status)s::text IS NULL OR status = %(status)s ORDER BY change_id",
            {"status": status},
        ).fetchall()


def parse_funds(pairs: list[str]) -> dict[str, Decimal]:
    """``GAU_ID=0.6`` pairs (a fund by its GAU Salesforce Id or its fund id) as shares."""
    funds: dict[str, Decimal] = {}
    for pair in pairs:
        fund, sep, value = pair.partition("=")
        try:
            share = Decimal(value)
        except InvalidOperation:
            share = Decimal(-1)
        if not sep or not fund or not share > 0:
            raise ValueError(f"{pair!r}: give FUND=SHARE, e.g. a0F5e000001AbCd=0.6 (shares add up to 1)")
        funds[fund] = share
    return funds


def _command(args: argparse.Namespace) -> int:
    from cdp.warehouse import resolve_url

    url = resolve_url()
    person = args.by or getpass.getuser()
    try:
        if args.action == "map-course":
            change = request_course(url, args.course, args.program, args.valid_from, args.reason, person=person,
                                    role=args.role)  # fmt: skip
            print(f"program change {change} requested; it waits for approval by the finance role")
        elif args.action == "fund-program":
            change = request_funds(url, args.program, parse_funds(args.fund or []), args.valid_from, args.reason,
                                   person=person, role=args.role)  # fmt: skip
            print(f"program change {change} requested; it waits for approval by the finance role")
        elif args.action in ("approve", "reject"):
            decide = approve if args.action == "approve" else reject
            outcome = decide(url, args.change_id, args.note, person=person, role=args.role)
            print(f"program change {args.change_id} {outcome}")
        else:
            rows = list_changes(url, status=args.status, person=person, role=args.role)
            for row in rows:
                what = (
                    f"course {row['course_id']}"
                    if row["kind"] == "course"
                    else f"funds {json.dumps(row['funds'])}"
                )
                print(f"{row['change_id']}\t{row['status']}\t{row['program']}\t{what}\tfrom {row['valid_from']}"
                      f"\tby {row['requested_by']}\t{row['reason']}"
                      + (f"\tdecided by {row['decided_by']}" if row["decided_by"] else ""))  # fmt: skip
            print(f"{len(rows)} program changes")
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
    """``cdp funds map-course|fund-program|approve|reject|list|report``."""
    funds = commands.add_parser("funds", help="programs tied to funds: reviewed changes")
    actions = funds.add_subparsers(dest="action", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--by", help="your name, written in the audit trail beside the database login")
        parser.add_argument(
            "--role", help="the database role to act as; required when the login is a superuser"
        )
        parser.set_defaults(handler=_command)

    def change(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--from", dest="valid_from", type=date.fromisoformat, required=True,
                            help="the first day (UTC) the change holds, YYYY-MM-DD")  # fmt: skip
        parser.add_argument("--reason", required=True)
        common(parser)

    course = actions.add_parser("map-course", help="ask for a course to belong to a program from a date")
    course.add_argument("course", help="the course: its id, source:id (moodle:42) or its code")
    course.add_argument("--program", required=True)
    change(course)
    program = actions.add_parser("fund-program", help="ask for a program's funds and shares from a date")
    program.add_argument("program")
    program.add_argument("--fund", action="append", metavar="FUND=SHARE",
                         help="a fund (GAU Salesforce Id or fund id) and its share; none: unfunded")  # fmt: skip
    change(program)
    for verb in ("approve", "reject"):
        decide = actions.add_parser(verb, help=f"{verb} a requested program change (finance role only)")
        decide.add_argument("change_id", type=int)
        decide.add_argument("--note", required=verb == "reject")
        common(decide)
    show = actions.add_parser("list", help="list program changes")
    show.add_argument("--status", choices=["requested", "applied", "rejected"])
    common(show)
    from cdp.finance import impact_report

    impact_report.register(actions)
