"""Phase 1 of the migration, step 3: fix what is safe, set exact duplicates aside, queue the rest.

Trims and lower-cases emails, writes phones in E.164, dates as ISO (``cdp.migration.legacy_rules``), sets
exact duplicates aside; each export's fixes are one audit event (counts and row ids, never values). What
cannot be fixed safely goes to ``ops.legacy_review`` with the reason. Then the cleaned records are
profiled again (stage 'after').
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from psycopg.types.json import Jsonb

from cdp import audit
from cdp.migration.legacy_formats import EXPORTS
from cdp.migration.legacy_import import LegacyFile, Row, fingerprint, load_rows
from cdp.migration.legacy_profile import Profile, profile_rows, store_profile
from cdp.migration.legacy_rules import cleaned_values, review_reason
from cdp.paths import SQL_DIR
from cdp.warehouse import Actor, transaction

log = logging.getLogger(__name__)

CLEAN_RECORD_SQL = SQL_DIR / "legacy" / "clean_record.sql"


@dataclass
class CleanupResult:
    fixed: dict[str, dict[str, int]]  # export -> rule -> rows fixed
    duplicates: dict[str, int]
    queued: dict[str, int]  # export -> rows newly queued for review
    changed_rows: int
    after: Profile


def cleanup(url: str, actor: Actor, run_id: str, files: Sequence[LegacyFile]) -> CleanupResult:
    """Fix what is safe, set exact duplicates aside, queue the rest; then profile the cleaned records."""
    print_ = fingerprint(files)
    fixed: dict[str, dict[str, int]] = {}
    duplicates: dict[str, int] = {}
    queued: dict[str, int] = {}
    changed_total = 0
    with transaction(url, actor) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('cdp.legacy:cleanup'))")
        clean_record = CLEAN_RECORD_SQL.read_text()
        rows = load_rows(conn, files)
        cleaned_rows: dict[str, list[Row]] = {}
        plan: list[tuple[Row, dict[str, str] | None, list[str], str, str | None]] = []
        for export, export_rows in rows.items():
            header = EXPORTS[export][1]
            seen: dict[tuple[str, ...], str] = {}
            for row in export_rows:
                if row.values is None:
                    cleaned_rows.setdefault(export, []).append(row)
                    plan.append((row, None, [], "review", None))
                    continue
                values, fixes = cleaned_values(export, row.values)
                identity = tuple(row.values[name] for name in header)
                if identity in seen:
                    plan.append((row, values, ["exact_duplicate"], "duplicate", seen[identity]))
                    continue
                seen[identity] = row.key
                cleaned = Row(export, row.key, row.file_sha256, row.number, values)
                cleaned_rows.setdefault(export, []).append(cleaned)
                plan.append((row, values, fixes, "fixed" if fixes else "clean", None))
        after = profile_rows("after", print_, cleaned_rows)
        for export in rows:
            fixed[export], duplicates[export], queued[export] = {}, 0, 0
        changed_keys: dict[str, list[str]] = {}
        for row, values, fixes, status, duplicate_of in plan:
            if status != "duplicate" and row.key in after.row_errors:
                status = "review"
            changed = conn.execute(
                clean_record,
                (row.export, row.key, row.file_sha256, row.number, None if values is None else Jsonb(values),
                 fixes, status, duplicate_of, run_id),
            ).rowcount  # fmt: skip
            if changed:
                changed_keys.setdefault(row.export, []).append(row.key)
                for fix in fixes:
                    rule = fix.split(":")[0]
                    if rule != "exact_duplicate":
                        fixed[row.export][rule] = fixed[row.export].get(rule, 0) + 1
                duplicates[row.export] += status == "duplicate"
            for rule, detail in after.row_errors.get(row.key, []) if status == "review" else []:
                queued[row.export] += conn.execute(
                    "INSERT INTO ops.legacy_review (export, row_key, rule, reason, payload, run_id)"
                    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (export, row_key, rule) DO NOTHING",
                    (row.export, row.key, rule, review_reason(rule, detail),
                     Jsonb({"values": row.values, "parse_error": row.parse_error}), run_id),
                ).rowcount  # fmt: skip
        for export, keys in changed_keys.items():
            changed_total += len(keys)
            # One event per export's correction batch: what was done, to which rows; never the values.
            audit.record_event(
                conn, "correction", f"legacy.{export}", print_,
                {"fixed": fixed[export], "duplicates_set_aside": duplicates[export],
                 "queued_for_review": queued[export], "rows": len(keys), "row_keys": keys},
            )  # fmt: skip
        store_profile(conn, run_id, after)
    log.info(
        "legacy cleanup: %d rows changed, %d fixes, %d duplicates set aside, %d newly queued; accuracy after %.2f%%",
        changed_total, sum(sum(v.values()) for v in fixed.values()), sum(duplicates.values()), sum(queued.values()),
        100 * (after.accuracy_rate or 0),
    )  # fmt: skip
    return CleanupResult(fixed, duplicates, queued, changed_total, after)
