"""The legacy referral spreadsheet into the warehouse: every row kept, unparsable rows kept with their reason.

Each data row lands in ``raw.records`` (source ``legacy_referrals``, stream ``spreadsheet``, record id
``<file sha256 prefix>:<row number>``) exactly as read; a row that parses becomes one ``ops.referral_legacy``
row keyed by the sheet's own ``Ref``; one that does not goes to ``ops.quarantine`` with the reason. A row
repeating an earlier referral (same friend, referrer and date, whatever the case and spaces) is kept and
points at the first with ``duplicate_of``. Importing the same file again changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from cdp.audit import record_event
from cdp.paths import SQL_DIR
from cdp.sheets import read_records
from cdp.text_rules import is_email
from cdp.warehouse import Actor, transaction

log = logging.getLogger(__name__)

SOURCE, STREAM = "legacy_referrals", "spreadsheet"
UPSERT_ROW_SQL = SQL_DIR / "referrals" / "legacy_row_upsert.sql"
COLUMNS = {
    "Ref": "legacy_ref",
    "Referrer name": "referrer_name",
    "Referrer email": "referrer_email",
    "Friend name": "referred_name",
    "Friend email": "referred_email",
    "Date referred": "referred_on",
    "Reward given": "reward_given",
}
REQUIRED = ("legacy_ref", "referrer_name", "referrer_email", "referred_name", "referred_email", "referred_on")


class LegacyRowError(ValueError):
    """A row that cannot be read as a referral; the message's first word is the quarantine reason."""


@dataclass(frozen=True)
class ImportResult:
    file_sha256: str
    rows: int
    raw_inserted: int
    parsed: int
    inserted_or_changed: int
    quarantined_new: int
    duplicates: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def read_sheet(path: str | Path) -> list[dict[str, Any]]:
    """The data rows of a CSV or XLSX file as {header: cell}, cells as read (XLSX dates stay dates)."""
    return read_records(path)


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _cells(cells: dict[str, Any]) -> dict[str, str]:
    return {k: v.isoformat() if isinstance(v, date) else _text(v) for k, v in cells.items() if k}


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _text(value)
    for pattern in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    if re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}|\d{4}-\d{1,2}-\d{1,2}", text):
        raise LegacyRowError("impossible_date: a date no calendar has")
    raise LegacyRowError("unparsable_date: not a date in YYYY-MM-DD or DD/MM/YYYY")


def parse_row(cells: dict[str, Any]) -> dict[str, Any]:
    """One sheet row as an ``ops.referral_legacy`` row, or ``LegacyRowError`` naming what is wrong."""
    row = {column: cells.get(header) for header, column in COLUMNS.items()}
    missing = [column for column in REQUIRED if _text(row[column]) == ""]
    if missing:
        raise LegacyRowError(f"missing_required: {', '.join(missing)}")
    parsed = {column: _text(row[column]) for column in COLUMNS.values() if column != "referred_on"}
    for column in ("referrer_email", "referred_email"):
        parsed[column] = parsed[column].lower()
        if not is_email(parsed[column]):
            raise LegacyRowError(f"malformed_email: {column}")
    parsed["referred_on"] = _date(row["referred_on"])
    parsed["reward_given"] = parsed["reward_given"] or None
    return parsed


def _same_referral(row: dict[str, Any]) -> tuple[Any, ...]:
    return (" ".join(row["referred_name"].lower().split()), row["referred_email"],
            " ".join(row["referrer_name"].lower().split()), row["referrer_email"], row["referred_on"])  # fmt: skip


def import_sheet(url: str, path: str | Path, *, actor: Actor, run_id: str) -> ImportResult:
    path = Path(path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    rows = read_sheet(path)
    parsed: list[tuple[int, dict[str, Any]]] = []
    rejected: list[tuple[int, str, dict[str, Any]]] = []
    refs_seen: set[str] = set()
    first_of: dict[tuple[Any, ...], str] = {}
    for number, cells in enumerate(rows, start=1):
        try:
            row = parse_row(cells)
            if row["legacy_ref"] in refs_seen:
                raise LegacyRowError("duplicate_ref: the Ref is used by an earlier row")
        except LegacyRowError as error:
            rejected.append((number, str(error), cells))
            continue
        refs_seen.add(row["legacy_ref"])
        row["duplicate_of"] = first_of.setdefault(_same_referral(row), row["legacy_ref"])
        if row["duplicate_of"] == row["legacy_ref"]:
            row["duplicate_of"] = None
        parsed.append((number, row))

    with transaction(url, actor) as conn:
        raw_inserted = 0
        for number, cells in enumerate(rows, start=1):
            payload = Jsonb({"file": path.name, "row_number": number, "cells": _cells(cells)})
            raw_inserted += conn.execute(
                "INSERT INTO raw.records (source, stream, source_record_id, run_id, payload)"
                " SELECT %(source)s, %(stream)s, %(id)s, %(run)s, %(payload)s WHERE NOT EXISTS (SELECT 1 FROM"
                " raw.records r WHERE r.source = %(source)s AND r.stream = %(stream)s AND r.source_record_id = %(id)s)",
                {"source": SOURCE, "stream": STREAM, "id": f"{sha[:16]}:{number}", "run": run_id, "payload": payload},
            ).rowcount  # fmt: skip
        changed = 0
        upsert = UPSERT_ROW_SQL.read_text()
        for number, row in parsed:
            changed += conn.execute(upsert, {**row, "sha": sha, "number": number, "run": run_id}).rowcount
        for _, row in parsed:  # after every row exists, so a duplicate can point at its first
            conn.execute(
                "UPDATE ops.referral_legacy SET duplicate_of = %s WHERE legacy_ref = %s"
                " AND duplicate_of IS DISTINCT FROM %s",
                (row["duplicate_of"], row["legacy_ref"], row["duplicate_of"]),
            )
        quarantined = 0
        for number, reason, cells in rejected:
            record_id = _text(cells.get("Ref")) or f"{sha[:16]}:{number}"
            quarantined += conn.execute(
                "INSERT INTO ops.quarantine (source, stream, source_record_id, run_id, reason, payload)"
                " SELECT %(source)s, %(stream)s, %(id)s, %(run)s, %(reason)s, %(payload)s WHERE NOT EXISTS"
                " (SELECT 1 FROM ops.quarantine q WHERE q.source = %(source)s AND q.stream = %(stream)s"
                " AND q.source_record_id = %(id)s AND q.reason = %(reason)s AND q.resolved_at IS NULL)",
                {"source": SOURCE, "stream": STREAM, "id": record_id, "run": run_id, "reason": reason,
                 "payload": Jsonb({"file": path.name, "row_number": number, "file_sha256": sha,
                                   "cells": _cells(cells)})},
            ).rowcount  # fmt: skip
        duplicates = sum(1 for _, row in parsed if row["duplicate_of"])
        result = ImportResult(sha, len(rows), raw_inserted, len(parsed), changed, quarantined, duplicates)
        if raw_inserted or changed or quarantined:
            record_event(
                conn, "import", "legacy_referral_sheet", sha, {"file": path.name, **result.as_dict()}
            )
    log.info(
        "legacy referral sheet %s…: %d rows, %d new in raw, %d parsed (%d new or changed, %d duplicates),"
        " %d newly quarantined",
        sha[:12], result.rows, raw_inserted, result.parsed, changed, duplicates, quarantined,
    )  # fmt: skip
    return result
