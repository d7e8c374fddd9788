"""The auditor's evidence pack for one month (issue 19, part 5): one folder, ``evidence-YYYY-MM/``, with

1. ``privileges/``: who could do what (``cdp.evidence.privileges``: every login and application role on every
   financial, personal and audit table and definer function, from the catalog);
2. ``changes/``: every change to donations in the month (the audit trail's row changes, each with the
   correction that made it, its requester and approver) and the reviewed corrections themselves;
3. ``audit_chain/``: the chain's verification and the month's head with the anchor that covers it;
4. ``reconciliation/``: the month's reconciliation run, its totals, differences and explanations (or, said
   plainly, that there is none);
5. ``access_changes/``: the month's privilege snapshot against the previous month's, and the logins the trail
   saw made;

with ``README.md`` (what each file is, its sha256, the limits) and ``SHA256SUMS`` (``sha256sum -c``).

Reproducible: every file holds facts of the data (never when or by whom the pack was written), rows sorted,
so a re-run for a closed month gives the same bytes unless the data changed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from cdp import audit
from cdp.evidence import privileges as access
from cdp.paths import SQL_DIR
from cdp.warehouse import Actor, connect

log = logging.getLogger(__name__)

_SQL = SQL_DIR / "evidence"

#: Tables whose audited row changes are "changes to donations".
CHANGED_TABLES = ("core.donation", "core.refund", "core.donation_soft_credit")
#: ... and "changes to allocations": the CRM's funds and allocations (the sync writes them), and the programs'
#: courses and funds (written only by an approved program change, listed in changes/program_changes.csv).
ALLOCATION_CHANGED_TABLES = (
    "core.fund",
    "core.donation_allocation",
    "core.program_course",
    "core.program_fund",
)
PROGRAM_CHANGE_HEADER = (
    "change_id", "kind", "program", "course_id", "funds", "valid_from", "status", "reason", "requested_by",
    "requested_role", "requested_at", "decided_by", "decided_role", "decided_at", "decision_note",
)  # fmt: skip


@dataclass
class Pack:
    folder: Path
    month: str
    #: relative path -> sha256 of every hashed file
    files: dict[str, str] = field(default_factory=dict)
    chain_ok: bool = False
    chain_summary: str = ""
    reconciliation: str = ""
    corrections: int = 0  # reviewed changes: donation corrections and program changes
    donation_changes: int = 0
    access_changes: int = 0

    def summary(self) -> str:
        return (
            f"evidence pack {self.month}: {self.folder} ({len(self.files)} files); audit chain "
            f"{'verified' if self.chain_ok else 'FAILED verification'}; reconciliation {self.reconciliation}; "
            f"{self.corrections} reviewed changes, {self.donation_changes} donation and allocation row changes, "
            f"{self.access_changes} access changes"
        )


def month_period(month: str) -> tuple[date, datetime, datetime]:
    """``YYYY-MM`` as (first day, start, end) with start and end at midnight UTC."""
    try:
        year, mon = (int(part) for part in month.split("-"))
        first = date(year, mon, 1)
    except ValueError as error:
        raise ValueError(f"month {month!r}: give YYYY-MM (e.g. 2026-11)") from error
    if len(month) != 7:
        raise ValueError(f"month {month!r}: give YYYY-MM (e.g. 2026-11)")
    following = date(year + (mon == 12), mon % 12 + 1, 1)
    return first, datetime.combine(first, time(), UTC), datetime.combine(following, time(), UTC)


# --- writing files the same way every time ------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date | Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return " ".join(_text(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=_text)
    return str(value)


def _json(value: Any) -> str:
    def default(item: Any) -> Any:
        return _text(item)

    return json.dumps(value, indent=2, sort_keys=True, default=default) + "\n"


def _csv(header: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_text(row.get(column)) for column in header])
    return buffer.getvalue()


class _Folder:
    """The pack's files, written under a temporary folder and swapped in whole at the end."""

    def __init__(self, final: Path) -> None:
        self.final = final
        self.work = final.with_name(final.name + ".partial")
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        self.files: dict[str, str] = {}
        self.rows: dict[str, int | None] = {}
        self.about: dict[str, str] = {}

    def write(self, name: str, content: str, about: str, rows: int | None = None) -> None:
        path = self.work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode("utf-8")
        path.write_bytes(data)
        self.files[name] = hashlib.sha256(data).hexdigest()
        self.rows[name] = rows
        self.about[name] = about

    def finish(self, readme: str) -> None:
        sums = "".join(f"{self.files[name]}  {name}\n" for name in sorted(self.files))
        (self.work / "SHA256SUMS").write_text(sums, encoding="utf-8")
        (self.work / "README.md").write_text(readme, encoding="utf-8")
        shutil.rmtree(self.final, ignore_errors=True)
        self.work.rename(self.final)


# --- the sections ---------------------------------------------------------------------------------------------


def _privileges(folder: _Folder, closing: access.Snapshot | None) -> list[str]:
    if closing is None:
        return [
            "**No privilege snapshot exists for this month**, and later months have one: the catalog today does"
            " not describe this closed month, so no privileges are listed (run the pack in the month after each"
            " month, as the `cdp_evidence` DAG does)."
        ]
    folder.write(
        "privileges/principals.csv",
        _csv(
            ("name", "login", "superuser", "bypassrls", "createrole", "inherit", "member_of"),
            closing.principals,
        ),
        "every login and application role: attributes and the application roles it is a member of (inherited)",
        len(closing.principals),
    )
    folder.write(
        "privileges/privileges.csv",
        _csv(
            (
                "object",
                "kind",
                "category",
                "grantee",
                "privileges",
                "select_columns",
                "insert_columns",
                "update_columns",
            ),
            closing.privileges,
        ),  # fmt: skip
        "effective privileges (held or inherited) of each login and role on each table, view and definer"
        " function in scope; one row per grantee and object that may do anything",
        len(closing.privileges),
    )
    objects = [
        {"object": name, "kind": kind, "category": category}
        for name, kind, category in sorted(
            {(row["object"], row["kind"], row["category"]) for row in closing.privileges}
        )
    ]
    folder.write(
        "privileges/scope.csv",
        _csv(("object", "kind", "category"), objects),
        "the objects covered: financial, personal (audit.personal_column and the fixed list) and audit tables, and"
        " every SECURITY DEFINER function",
        len(objects),
    )
    return [
        f"Privileges as of snapshot {closing.snapshot_id} (taken {_text(closing.taken_at)} by {closing.taken_by})."
    ]


def _changes(conn: psycopg.Connection, folder: _Folder, start: datetime, end: datetime) -> tuple[int, int]:
    period = {"period_start": start, "period_end": end}
    corrections = conn.execute((_SQL / "donation_corrections.sql").read_text(), period).fetchall()
    folder.write(
        "changes/donation_corrections.csv",
        _csv(
            (
                "correction_id",
                "donation_id",
                "financial_transaction_id",
                "status",
                "requested_by",
                "requested_role",
                "requested_at",
                "reason",
                "before",
                "after",
                "decided_by",
                "decided_role",
                "decided_at",
                "decision_note",
                "applied_at",
            ),
            corrections,
        ),  # fmt: skip
        "reviewed corrections requested, decided or applied in the month: who asked (login, role), who decided",
        len(corrections),
    )
    rows = _row_changes(conn, CHANGED_TABLES, start, end)
    folder.write(
        "changes/donation_changes.csv",
        _csv(CHANGE_HEADER, rows),
        f"every row change the audit trail recorded in {', '.join(CHANGED_TABLES)}: what changed, by which login,"
        " and the review behind it (a correction's requester and approver, a pipeline run, or none)",
        len(rows),
    )
    allocations = _row_changes(conn, ALLOCATION_CHANGED_TABLES, start, end)
    folder.write(
        "changes/allocation_changes.csv",
        _csv(CHANGE_HEADER, allocations),
        f"every row change the audit trail recorded in {', '.join(ALLOCATION_CHANGED_TABLES)}, as"
        " donation_changes.csv: the CRM's funds and allocations (review: the sync that landed them) and the"
        " programs' courses and funds (review: the program change in program_changes.csv)",
        len(allocations),
    )
    program_changes = conn.execute((_SQL / "program_changes.sql").read_text(), period).fetchall()
    folder.write(
        "changes/program_changes.csv",
        _csv(PROGRAM_CHANGE_HEADER, program_changes),
        "reviewed program changes requested or decided in the month (a course's program, a program's funds and"
        " shares): who asked (login, role), who decided",
        len(program_changes),
    )
    return len(corrections) + len(program_changes), len(rows) + len(allocations)


CHANGE_HEADER = ("seq", "occurred_at", "table", "operation", "key", "financial_transaction_id", "changed",
                 "login", "acting_role", "actor", "dag_id", "run_id", "task_id", "review", "correction_id",
                 "requested_by", "approved_by")  # fmt: skip


def _primary_keys(conn: psycopg.Connection, tables: Sequence[str]) -> dict[str, list[str]]:
    rows = conn.cursor(row_factory=psycopg.rows.tuple_row).execute(
        "SELECT c.oid::regclass::text, array_agg(a.attname::text ORDER BY k.ordinality)"
        " FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid"
        " CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ordinality)"
        " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum"
        " WHERE i.indisprimary AND c.oid::regclass::text = ANY (%s) GROUP BY c.oid",
        (list(tables),),
    )
    return {name: list(columns) for name, columns in rows}


def _row_changes(
    conn: psycopg.Connection, tables: Sequence[str], start: datetime, end: datetime
) -> list[dict]:
    """One line per changed row: the audit trail's statement events split into their row images."""
    keys = _primary_keys(conn, tables)
    out: list[dict[str, Any]] = []
    for event in conn.execute(
        (_SQL / "donation_changes.sql").read_text(),
        {"tables": list(tables), "period_start": start, "period_end": end},
    ):
        key_columns = keys.get(event["entity_type"], [])

        def key_of(row: dict[str, Any], key_columns: list[str] = key_columns) -> str:
            return "/".join(_text(row.get(column)) for column in key_columns)

        before = {key_of(row): row for row in event["before"] or []}
        after = {key_of(row): row for row in event["after"] or []}
        if event["correction_id"]:
            review = f"correction {event['correction_id']}"
        elif event["dag_id"]:
            review = f"pipeline: {event['dag_id']}"
        else:
            review = "none: a direct write by the login"
        for key in sorted(before.keys() | after.keys()):
            old, new = before.get(key), after.get(key)
            if old is not None and new is not None:
                changed = "; ".join(
                    f"{column}: {_text(old.get(column))} -> {_text(new.get(column))}"
                    for column in sorted(old.keys() | new.keys())
                    if old.get(column) != new.get(column) and column != "_personal"
                )
            else:
                changed = ""
            out.append({
                "seq": event["seq"], "occurred_at": event["occurred_at"], "table": event["entity_type"],
                "operation": event["action"], "key": key,
                "financial_transaction_id": (new or old).get("financial_transaction_id"), "changed": changed,
                "login": event["db_role"], "acting_role": event["session_role"], "actor": event["actor"],
                "dag_id": event["dag_id"], "run_id": event["run_id"], "task_id": event["task_id"], "review": review,
                "correction_id": event["correction_id"], "requested_by": event["requested_by"],
                "approved_by": event["approved_by"],
            })  # fmt: skip
    return out


def _anchor_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _audit_chain(
    conn: psycopg.Connection, folder: _Folder, start: datetime, end: datetime, anchor_file: Path
) -> audit.VerifyReport:
    report = audit.verify(conn, audit.read_anchors(anchor_file))
    period = conn.execute(
        "SELECT min(seq) AS first_seq, max(seq) AS last_seq, count(seq) AS sealed_events,"
        " count(*) FILTER (WHERE seq IS NULL) AS unsealed_events"
        " FROM audit.audit_events WHERE occurred_at >= %s AND occurred_at < %s",
        (start, end),
    ).fetchone()
    head = conn.execute(
        "SELECT seq, hash FROM audit.audit_events WHERE seq IS NOT NULL AND occurred_at < %s"
        " ORDER BY seq DESC LIMIT 1",
        (end,),
    ).fetchone()
    covering = None
    if head is not None:
        covering = next(
            (record for record in _anchor_records(anchor_file) if int(record["seq"]) >= head["seq"]), None
        )
    anchor: dict[str, Any] | None = None
    if covering is not None:
        chained = conn.execute(
            "SELECT hash FROM audit.audit_events WHERE seq = %s", (int(covering["seq"]),)
        ).fetchone()
        anchor = {
            "seq": int(covering["seq"]),
            "hash": covering["hash"],
            "exported_at": covering.get("exported_at"),
            "airflow_run_id": covering.get("run_id"),
            "matches_the_chain": chained is not None and chained["hash"] == covering["hash"],
        }
    verification = {
        "verification": "passed" if report.ok else "FAILED",
        "first_bad_seq": report.first_bad_seq,
        "problem": report.problem,
        "how": "`cdp audit verify`: every sealed row's hash recomputed from seq 1 (in Python, from the canonical"
        " text), every exported anchor compared, the personal images' seals checked",
        "period_events": {key: period[key] for key in ("first_seq", "last_seq", "sealed_events", "unsealed_events")},
        "period_head": dict(head) if head else None,
        "anchored_head": anchor,
        "anchoring": (
            "no audit event before the month's end" if head is None
            else f"the month's head (seq {head['seq']}) is covered by anchor seq {anchor['seq']}" if anchor
            else f"NOT ANCHORED: no exported anchor at or after seq {head['seq']} in the anchor file yet"
        ),
    }  # fmt: skip
    folder.write(
        "audit_chain/verification.json",
        _json(verification),
        "the audit chain's verification, the month's events and head, and the exported anchor that covers it",
    )
    return report


RUN_COLUMNS = ("run_id", "month", "airflow_run_id", "started_at", "finished_at", "status", "gifts",
               "unexplained_count", "report_html", "report_csv")  # fmt: skip


def _reconciliation(conn: psycopg.Connection, folder: _Folder, first: date) -> tuple[str, list[str]]:
    runs = conn.execute(
        f"SELECT {', '.join(RUN_COLUMNS)} FROM ops.reconciliation_run WHERE month = %s ORDER BY run_id",  # noqa: S608
        (first,),
    ).fetchall()
    if not runs:
        folder.write(
            "reconciliation/sign_off.json",
            _json(
                {
                    "month": f"{first:%Y-%m}",
                    "signed_off": False,
                    "status": "no reconciliation run",
                    "note": f"No reconciliation run exists for {first:%Y-%m}: the month is not reconciled. Run the"
                    f" cdp_reconcile DAG with month={first:%Y-%m}, then write this pack again.",
                }
            ),  # fmt: skip
            "the month's reconciliation sign-off: NONE, no reconciliation run exists for the month",
        )
        return "missing", [
            f"**No reconciliation run exists for {first:%Y-%m}**: the month is not signed off."
        ]
    latest = runs[-1]
    run_id = latest["run_id"]
    folder.write(
        "reconciliation/runs.csv", _csv(RUN_COLUMNS, runs),
        "every reconciliation run of the month (the latest is the sign-off)", len(runs),
    )  # fmt: skip
    totals = conn.execute(
        "SELECT class, currency, rows, warehouse_minor, stripe_minor, ledger_minor, crm_minor, difference_minor,"
        " unexplained FROM ops.reconciliation_total WHERE run_id = %s ORDER BY class, currency",
        (run_id,),
    ).fetchall()
    folder.write(
        "reconciliation/totals.csv",
        _csv(
            (
                "class",
                "currency",
                "rows",
                "warehouse_minor",
                "stripe_minor",
                "ledger_minor",
                "crm_minor",
                "difference_minor",
                "unexplained",
            ),
            totals,
        ),  # fmt: skip
        "the sign-off run's totals per class and currency (amounts in minor units)",
        len(totals),
    )
    differences = conn.execute(
        "SELECT class, financial_transaction_id, currency, warehouse_minor, stripe_minor, ledger_minor, crm_minor,"
        " difference_minor, donation_id::text AS donation_id, campaign, explained, explanation, detail"
        " FROM ops.reconciliation_result WHERE run_id = %s"
        " ORDER BY class, financial_transaction_id NULLS LAST, currency, difference_minor, result_id",
        (run_id,),
    ).fetchall()
    folder.write(
        "reconciliation/differences.csv",
        _csv(
            (
                "class",
                "financial_transaction_id",
                "currency",
                "warehouse_minor",
                "stripe_minor",
                "ledger_minor",
                "crm_minor",
                "difference_minor",
                "donation_id",
                "campaign",
                "explained",
                "explanation",
                "detail",
            ),
            differences,
        ),  # fmt: skip
        "every differing row of the sign-off run, explained or not",
        len(differences),
    )
    explanations = conn.execute(
        "SELECT e.financial_transaction_id, e.class, e.note, e.explained_by, e.explained_at"
        " FROM ops.reconciliation_explanation e WHERE EXISTS (SELECT 1 FROM ops.reconciliation_result r"
        " WHERE r.run_id = %s AND r.financial_transaction_id = e.financial_transaction_id AND r.class = e.class)"
        " ORDER BY e.financial_transaction_id, e.class",
        (run_id,),
    ).fetchall()
    folder.write(
        "reconciliation/explanations.csv",
        _csv(("financial_transaction_id", "class", "note", "explained_by", "explained_at"), explanations),
        "finance's explanations of the differences the sign-off run accepted: who explained each and when",
        len(explanations),
    )
    signed = latest["status"] == "passed"
    folder.write(
        "reconciliation/sign_off.json",
        _json(
            {
                "month": f"{first:%Y-%m}",
                "signed_off": signed,
                "status": latest["status"],
                "run_id": run_id,
                "gifts": latest["gifts"],
                "unexplained_differences": latest["unexplained_count"],
                "explained_differences": len(explanations),
                "started_at": latest["started_at"],
                "finished_at": latest["finished_at"],
                "airflow_run_id": latest["airflow_run_id"],
                "runs_in_month": len(runs),
            }
        ),  # fmt: skip
        "the month's reconciliation sign-off: the latest run, passed or failed",
    )
    return latest["status"], [
        f"Reconciliation run {run_id}: **{latest['status']}** ({latest['gifts']} gifts,"
        f" {latest['unexplained_count']} unexplained differences, {len(explanations)} explained)."
    ]


def _access_changes(
    conn: psycopg.Connection, folder: _Folder, first: date, start: datetime, end: datetime,
    closing: access.Snapshot | None,
) -> tuple[int, list[str]]:  # fmt: skip
    baseline = access.latest_snapshot(conn, first, before=True)
    changes = access.differences(baseline, closing)
    folder.write(
        "access_changes/snapshots.json",
        _json(
            {
                "closing": closing.header() if closing else None,
                "baseline": baseline.header() if baseline else None,
                "compared": baseline is not None and closing is not None,
                "limits": access.LIMITS,
            }
        ),  # fmt: skip
        "the two privilege snapshots compared (this month's close and the previous month's)",
    )
    folder.write(
        "access_changes/access_changes.csv",
        _csv(("change", "principal", "object", "before", "after"), changes),
        "logins and roles made or dropped, attributes, memberships and privileges changed between the snapshots",
        len(changes),
    )
    events = conn.execute(
        "SELECT seq, occurred_at, action, entity_type, entity_id, db_role, session_role, actor, details"
        " FROM audit.audit_events WHERE occurred_at >= %s AND occurred_at < %s"
        " AND (entity_type = 'role' OR action IN ('create_login', 'privilege_snapshot'))"
        " ORDER BY occurred_at, event_id",
        (start, end),
    ).fetchall()
    folder.write(
        "access_changes/access_events.csv",
        _csv(
            (
                "seq",
                "occurred_at",
                "action",
                "entity_type",
                "entity_id",
                "db_role",
                "session_role",
                "actor",
                "details",
            ),
            events,
        ),  # fmt: skip
        "access events the audit trail recorded in the month: logins made by privacy.create_login, service logins"
        " made or changed by `cdp warehouse logins`, privilege snapshots taken",
        len(events),
    )
    notes = []
    if baseline is None:
        notes.append(
            "**No earlier privilege snapshot**: the access changes cannot be computed for this month (the first"
            " pack's snapshot is the baseline of the next)."
        )
    return len(changes), notes


def _readme(pack_month: str, start: datetime, end: datetime, folder: _Folder, notes: list[str]) -> str:
    lines = [
        f"# Evidence pack {pack_month}",
        "",
        f"Period: {start.isoformat()} to {end.isoformat()} (end excluded). Written by `cdp audit evidence"
        f" --month {pack_month}` (and the `cdp_evidence` DAG after the monthly reconciliation). Every file below"
        " holds facts of the data only, rows sorted: writing the pack again gives the same bytes unless the data"
        " changed. Check the files with `sha256sum -c SHA256SUMS`.",
        "",
        "## Findings",
        "",
        *[f"- {note}" for note in notes],
        "",
        "## Files",
        "",
        "| file | rows | sha256 | what it is |",
        "|---|---|---|---|",
    ]
    for name in sorted(folder.files):
        rows = folder.rows[name]
        lines.append(
            f"| `{name}` | {'' if rows is None else rows} | `{folder.files[name]}` | {folder.about[name]} |"
        )
    lines += [
        "",
        "## Scope of the privileges",
        "",
        f"- financial: {', '.join(f'`{t}`' for t in (*access.FINANCIAL_TABLES, *access.ALLOCATION_TABLES))}",
        f"- personal: {', '.join(f'`{t}`' for t in access.PERSONAL_TABLES)}, and every table"
        " `audit.personal_column` names a personal column of",
        f"- audit: {', '.join(f'`{t}`' for t in access.AUDIT_TABLES)}",
        "- every SECURITY DEFINER function (approving a correction, erasing a person, making a login, …)",
        "",
        "Letters: " + _legend() + " A superuser login may do everything and bypasses row-level security.",
        "",
        "## What the access changes can and cannot show",
        "",
        access.LIMITS,
        "",
    ]
    return "\n".join(lines)


def _legend() -> str:
    from cdp.privacy.role_matrix import LEGEND

    return LEGEND + "."


def write_pack(url: str, month: str, out: Path, *, actor: Actor, anchor_file: Path | None = None) -> Pack:
    """Write ``out/evidence-<month>/``; replaces an earlier pack of the month whole."""
    first, start, end = month_period(month)
    anchor_file = anchor_file or audit.default_anchor_file()
    folder = _Folder(out / f"evidence-{month}")
    pack = Pack(folder.final, month)
    notes: list[str] = []
    # Not autocommit: verifying streams the trail through a server-side cursor (a transaction's). Committed
    # after the snapshot (kept whatever follows) and before verifying (which seals first, on an idle connection).
    with connect(url, actor) as conn:
        closing = access.closing_snapshot(conn, first)
        conn.commit()
        notes += _privileges(folder, closing)
        pack.corrections, pack.donation_changes = _changes(conn, folder, start, end)
        conn.commit()
        report = _audit_chain(conn, folder, start, end, anchor_file)
        pack.chain_ok = report.ok
        pack.chain_summary = report.summary()
        notes.append(
            "Audit chain: verification **passed**." if report.ok
            else f"Audit chain: verification **FAILED** at seq {report.first_bad_seq}: {report.problem}."
        )  # fmt: skip
        pack.reconciliation, reconciliation_notes = _reconciliation(conn, folder, first)
        notes += reconciliation_notes
        pack.access_changes, access_notes = _access_changes(conn, folder, first, start, end, closing)
        notes += access_notes
    notes.append(
        f"{pack.corrections} reviewed changes (corrections, program changes), {pack.donation_changes} donation and"
        f" allocation row changes, {pack.access_changes} access changes."
    )
    folder.finish(_readme(month, start, end, folder, notes))
    pack.files = dict(sorted(folder.files.items()))
    log.info("%s", pack.summary())
    return pack
