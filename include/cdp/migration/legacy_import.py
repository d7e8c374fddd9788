"""Phase 1 of the migration, step 1: land the legacy exports as received.

The exports (LMS learners and enrollments as CSV, the CRM export as CSV, the donor spreadsheet as XLSX,
the referral spreadsheet as XLSX and CSV; names and columns in ``EXPORTS``) are read from one folder.
Each file's rows go to ``raw.records`` (source ``legacy``, stream = the export, record id
``<sha256 prefix>:<row>``) exactly as read, a row that cannot be parsed kept with its reason;
``raw.legacy_file`` remembers each content, so the same file again lands nothing.

The next steps: ``cdp.migration.legacy_profile`` (completeness, rule breaches, duplicates, orphans, the
accuracy rate) and ``cdp.migration.legacy_cleanup`` (the safe fixes, the review queue), over the rules in
``cdp.migration.legacy_rules``. Every step is idempotent: the same files give the same rows, profile,
fixes and queue, and no new events.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from cdp import audit
from cdp.migration.legacy_formats import EXPORTS
from cdp.paths import path_within
from cdp.sheets import read_lines
from cdp.warehouse import Actor, transaction

log = logging.getLogger(__name__)

SOURCE = "legacy"


class LegacyFormatError(ValueError):
    """A file is not the export it is named after (wrong header): nothing of it lands; fix or rename it."""


@dataclass(frozen=True)
class LegacyFile:
    export: str
    name: str
    sha256: str
    rows: int
    new: bool


@dataclass(frozen=True)
class Row:
    export: str
    key: str  # raw.records.source_record_id
    file_sha256: str
    number: int
    values: dict[str, str] | None  # None when the row could not be parsed
    parse_error: str | None = None


def _cell(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value if isinstance(value, int | float | str | bool) else str(value)


def read_file(path: Path, header: Sequence[str]) -> list[dict[str, Any]]:
    """The file's data rows as raw payload parts: ``cells`` as read, ``values`` by column, or the parse error."""
    lines = [[_cell(v) for v in row] for row in read_lines(path)]
    if not lines or [str(c or "").strip() for c in lines[0][: len(header)]] != list(header):
        found = lines[0] if lines else []
        raise LegacyFormatError(f"{path.name}: header {found!r} is not the expected {list(header)!r}")
    out = []
    for number, cells in enumerate(lines[1:], start=1):
        cells = list(cells)
        # Spreadsheets pad short rows with empty trailing cells; only cells beyond the header that hold
        # something make a row unparseable.
        while len(cells) > len(header) and cells[-1] in (None, ""):
            cells.pop()
        entry: dict[str, Any] = {"row": number, "cells": cells}
        if len(cells) != len(header):
            entry["values"] = None
            entry["parse_error"] = f"expected {len(header)} fields, got {len(cells)}"
        else:
            entry["values"] = {
                name: "" if v is None else str(v) for name, v in zip(header, cells, strict=True)
            }
            entry["parse_error"] = None
        out.append(entry)
    return out


def import_exports(url: str, actor: Actor, run_id: str, folder: str | Path) -> list[LegacyFile]:
    """Land every export file found in ``folder``; a content already landed lands nothing again."""
    folder = Path(folder).resolve()
    found: list[LegacyFile] = []
    for export, (names, header) in EXPORTS.items():
        for name in names:
            path = folder / name
            if not path.exists():
                continue
            # An export that is a symlink out of the folder (to the worker's config, say) is refused unread.
            path = path_within(path, (folder,), parameter=f"folder: {name}")
            content = path.read_bytes()
            sha = hashlib.sha256(content).hexdigest()
            rows = read_file(path, header)
            with transaction(url, actor) as conn:
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"cdp.legacy:{export}",))
                inserted = conn.execute(
                    "INSERT INTO raw.legacy_file (export, file_name, format, sha256, rows, run_id)"
                    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (export, sha256) DO NOTHING RETURNING file_id",
                    (export, name, path.suffix.lstrip("."), sha, len(rows), run_id),
                ).fetchone()
                if inserted:
                    with conn.cursor().copy(
                        "COPY raw.records (source, stream, source_record_id, run_id, payload) FROM STDIN"
                    ) as copy:
                        for entry in rows:
                            payload = {"file": name, "sha256": sha, **entry}
                            copy.write_row(
                                (SOURCE, export, f"{sha[:16]}:{entry['row']}", run_id, Jsonb(payload))
                            )
                    unparseable = sum(1 for entry in rows if entry["parse_error"])
                    audit.record_event(
                        conn, "import", f"legacy.{export}", sha,
                        {"file": name, "sha256": sha, "rows": len(rows), "unparseable": unparseable},
                    )  # fmt: skip
            log.info(
                "legacy %s: %s, %d rows, %s",
                export,
                name,
                len(rows),
                "landed" if inserted else "already landed",
            )
            found.append(LegacyFile(export, name, sha, len(rows), bool(inserted)))
    if not found:
        raise FileNotFoundError(
            f"no legacy export found in {folder} "
            f"(expected {sorted(name for names, _ in EXPORTS.values() for name in names)})"
        )
    return found


def fingerprint(files: Iterable[LegacyFile]) -> str:
    return hashlib.sha256("\n".join(sorted(f"{f.export}:{f.sha256}" for f in files)).encode()).hexdigest()


def load_rows(conn: psycopg.Connection, files: Sequence[LegacyFile]) -> dict[str, list[Row]]:
    """The landed rows of these files, per export in reading order (file order, then row)."""
    order = {name: k for _, (names, _) in EXPORTS.items() for k, name in enumerate(names)}
    rows: dict[str, list[Row]] = {}
    for file in sorted(files, key=lambda f: (f.export, order.get(f.name, 99))):
        records = conn.execute(
            "SELECT source_record_id, payload FROM raw.records WHERE source = %s AND stream = %s"
            " AND source_record_id LIKE %s AND NOT payload ? '_erased' ORDER BY (payload ->> 'row')::int",
            (SOURCE, file.export, f"{file.sha256[:16]}:%"),
        ).fetchall()
        for record in records:
            payload = record["payload"]
            rows.setdefault(file.export, []).append(
                Row(file.export, record["source_record_id"], file.sha256, int(payload["row"]), payload["values"],
                    payload.get("parse_error"))
            )  # fmt: skip
    return rows
