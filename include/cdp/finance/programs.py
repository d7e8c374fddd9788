"""Programs tied to funds: which program a course belongs to, and which funds pay for a program, from a date.

Like a donation correction (``corrections``), a change is a request (``ops.request_program_change``) that
the finance role approves or rejects, as another database login than the one that asked; the rules live in
Postgres (sql/definitions/ops/program_change.sql), this module and ``cdp funds`` only call them. What the
mappings give every enrollment, completion and survey response is ``mart.activity_fund``.
"""

from __future__ import annotations

import argparse
import csv
import getpass
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
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


#: The columns of a program-mapping file (``cdp funds import-programs``): one requested change per row.
#: kind course: ``course`` (id, source:id or code) joins ``program``; kind funds: ``funds`` = ``FUND=SHARE``
#: pairs separated by ``;`` (empty: the program is unfunded from that day).
IMPORT_COLUMNS = ("kind", "program", "course", "funds", "valid_from", "reason")


@dataclass
class ImportResult:
    requested: list[tuple[int, int]] = field(default_factory=list)  # (line, change id)
    rejected: list[tuple[int, dict[str, str], str]] = field(default_factory=list)  # (line, row, reason)


def _row_change(row: dict[str, str]) -> tuple[str, str, str | None, dict[str, Decimal] | None, date, str]:
    kind = (row.get("kind") or "").strip()
    if kind not in ("course", "funds"):
        raise ValueError(f"kind is course or funds, not {kind!r}")
    try:
        valid_from = date.fromisoformat((row.get("valid_from") or "").strip())
    except ValueError:
        raise ValueError(f"valid_from is a date YYYY-MM-DD, not {row.get('valid_from')!r}") from None
    program, reason = (row.get("program") or "").strip(), (row.get("reason") or "").strip()
    if kind == "course":
        course = (row.get("course") or "").strip()
        if not course or (row.get("funds") or "").strip():
            raise ValueError("a course row names its course, and no funds")
        return kind, program, course, None, valid_from, reason
    if (row.get("course") or "").strip():
        raise ValueError("a funds row names its funds, and no course")
    pairs = [pair.strip() for pair in (row.get("funds") or "").split(";") if pair.strip()]
    return kind, program, None, parse_funds(pairs), valid_from, reason


def import_programs(url: str, path: Path, *, person: str, role: str | None = None) -> ImportResult:
    """Every row of a CSV file (``IMPORT_COLUMNS``) as a requested program change, through the same function
    as ``map-course`` / ``fund-program`` (each waits for another login's approval, audited). A row the file or
    the database refuses is rejected with its reason; the others are requested, in one transaction."""
    reader = csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline=""))
    missing = [c for c in IMPORT_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(
            f"{path}: the header lacks {', '.join(missing)} (columns: {', '.join(IMPORT_COLUMNS)})"
        )
    result = ImportResult()
    with acting_as(url, person, role) as conn:
        for row in reader:
            line = reader.line_num
            extra = row.pop(None, None)
            if not extra and not any((value or "").strip() for value in row.values()):
                continue
            try:
                if extra:
                    raise ValueError(f"{len(extra)} more cells than the header has: {extra!r}")
                kind, program, course, funds, valid_from, reason = _row_change(row)
                shares = None if funds is None else json.dumps(
                    {f: float(v) if v != v.to_integral() else int(v) for f, v in funds.items()})  # fmt: skip
                with conn.transaction():
                    change = conn.execute(
                        "SELECT ops.request_program_change(%s, %s, %s, %s::jsonb, %s, %s) AS id",
                        (kind, program, course, shares, valid_from, reason),
                    ).fetchone()["id"]
            except ValueError as error:
                result.rejected.append((line, row, str(error)))
            except psycopg.errors.InsufficientPrivilege:
                raise
            except psycopg.Error as error:
                result.rejected.append((line, row, error.diag.message_primary or str(error)))
            else:
                result.requested.append((line, int(change)))
    return result


def write_rejects(result: ImportResult, path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["line", *IMPORT_COLUMNS, "reason"])
        for line, row, reason in result.rejected:
            writer.writerow([line, *(row.get(c) or "" for c in IMPORT_COLUMNS), reason])


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
        elif args.action == "import-programs":
            source = Path(args.file)
            result = import_programs(url, source, person=person, role=args.role)
            for line, change in result.requested:
                print(f"line {line}: program change {change} requested")
            for line, _row, reason in result.rejected:
                print(f"line {line}: rejected: {reason}")
            rejects = Path(args.rejects) if args.rejects else source.with_name(source.name + ".rejected.csv")
            if result.rejected:
                write_rejects(result, rejects)
            print(f"{len(result.requested)} program changes requested (they wait for approval by the finance"
                  f" role), {len(result.rejected)} rows rejected"
                  + (f": kept with their reasons in {rejects}" if result.rejected else ""))  # fmt: skip
            return 2 if result.rejected else 0
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
    except (ValueError, OSError) as error:
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
    """``cdp funds map-course|fund-program|import-programs|approve|reject|list|report``."""
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
    many = actions.add_parser(
        "import-programs", help="ask for many program changes from a CSV file (one requested change per row)"
    )
    many.add_argument(
        "file", help=f"CSV with the columns {', '.join(IMPORT_COLUMNS)}; funds: FUND=SHARE;FUND=SHARE"
    )
    many.add_argument(
        "--rejects", help="where the rejected rows go with their reasons (default FILE.rejected.csv)"
    )
    common(many)
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
