"""The legacy referral sheet lands whole: every row in raw, parsed rows in ops.referral_legacy, unparsable rows
in ops.quarantine with their reason, repeats marked; the XLSX reads as the CSV does; importing again changes
nothing."""

from __future__ import annotations

from pathlib import Path

import psycopg
from support import snapshot

from cdp.referrals.legacy_import import LegacyRowError, import_sheet, parse_row
from cdp.warehouse import Actor
from cdp_sandbox.legacy_referrals import HEADER, LegacySheet

ACTOR = Actor("pytest")
TABLES = ("raw.records", "ops.referral_legacy", "ops.quarantine", "audit.audit_events")


def _legacy(url: str) -> dict[str, tuple]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT legacy_ref, referrer_name, referrer_email, referred_name, referred_email, referred_on,"
            " reward_given, duplicate_of FROM ops.referral_legacy"
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


def test_every_row_is_kept_and_bad_rows_wait_in_quarantine_with_their_reason(
    warehouse_url: str, sheet: LegacySheet, sheet_csv: Path
) -> None:
    result = import_sheet(warehouse_url, sheet_csv, actor=ACTOR, run_id="run-1")

    assert sheet.unparsable and sheet.duplicates and sheet.typos, "the sheet must plant every kind of mess"
    assert result.rows == result.raw_inserted == len(sheet.rows)
    assert result.parsed == len(sheet.rows) - len(sheet.unparsable)
    with psycopg.connect(warehouse_url) as conn:
        raw = conn.execute(
            "SELECT payload -> 'cells' ->> 'Ref' FROM raw.records WHERE source = 'legacy_referrals'"
        ).fetchall()
        kept = dict(
            conn.execute(
                "SELECT source_record_id, reason FROM ops.quarantine WHERE source = 'legacy_referrals'"
            ).fetchall()
        )
        events = conn.execute(
            "SELECT details FROM audit.audit_events WHERE action = 'import' AND entity_type = 'legacy_referral_sheet'"
        ).fetchall()
    assert sorted(ref for (ref,) in raw) == sorted(row[0] for row in sheet.rows)
    assert set(kept) == set(sheet.unparsable)
    for ref, reason in sheet.unparsable.items():
        assert kept[ref].split(":")[0] == reason
    legacy = _legacy(warehouse_url)
    assert set(legacy) == {row[0] for row in sheet.rows} - set(sheet.unparsable)
    assert {ref: row[-1] for ref, row in legacy.items() if row[-1]} == sheet.duplicates
    (details,) = [e[0] for e in events]
    assert details["parsed"] == result.parsed and details["quarantined_new"] == len(sheet.unparsable)


def test_the_xlsx_export_reads_exactly_as_the_csv(
    warehouse_url: str, another_warehouse, sheet: LegacySheet, sheet_csv: Path, tmp_path: Path
) -> None:
    xlsx = sheet.write_xlsx(tmp_path / "legacy_referrals.xlsx")
    other = another_warehouse()
    import_sheet(warehouse_url, sheet_csv, actor=ACTOR, run_id="csv")
    import_sheet(other, xlsx, actor=ACTOR, run_id="xlsx")
    assert _legacy(other) == _legacy(warehouse_url)


def test_importing_the_same_file_again_changes_nothing(warehouse_url: str, sheet_csv: Path) -> None:
    import_sheet(warehouse_url, sheet_csv, actor=ACTOR, run_id="run-1")
    before = snapshot(warehouse_url, TABLES)

    again = import_sheet(warehouse_url, sheet_csv, actor=ACTOR, run_id="run-2")

    assert (again.raw_inserted, again.inserted_or_changed, again.quarantined_new) == (0, 0, 0)
    assert snapshot(warehouse_url, TABLES) == before


def test_a_corrected_row_in_a_later_file_updates_the_referral(
    warehouse_url: str, sheet: LegacySheet, sheet_csv: Path, tmp_path: Path
) -> None:
    import_sheet(warehouse_url, sheet_csv, actor=ACTOR, run_id="run-1")
    ref, fixed = next(iter(sheet.unparsable.items()))
    assert fixed
    rows = [list(row) for row in sheet.rows]
    for row in rows:
        if row[0] == ref:
            row[3], row[5] = row[3] or "friend@example.org", "2024-02-28"
    LegacySheet(rows=rows).write_csv(tmp_path / "fixed.csv")

    import_sheet(warehouse_url, tmp_path / "fixed.csv", actor=ACTOR, run_id="run-2")

    assert ref in _legacy(warehouse_url)


def test_parse_row_names_what_is_wrong() -> None:
    good = dict(zip(HEADER, ["R1", "Ana Silva", "ana@example.org", "Bo Li", "bo@example.org", "05/03/2024", ""],
                    strict=True))  # fmt: skip
    assert parse_row(good)["referred_on"].isoformat() == "2024-03-05"
    for header, value, reason in (
        ("Friend email", "", "missing_required"),
        ("Friend email", "bo(at)example.org", "malformed_email"),
        ("Date referred", "30/02/2024", "impossible_date"),
        ("Date referred", "last spring", "unparsable_date"),
    ):
        try:
            parse_row({**good, header: value})
        except LegacyRowError as error:
            assert str(error).startswith(reason), (header, value, error)
        else:
            raise AssertionError(f"{header}={value!r} was accepted")


def test_the_cli_writes_the_sandbox_sheet(tmp_path: Path) -> None:
    from cdp.cli import main

    out = tmp_path / "sheet.xlsx"
    assert main(["sandbox", "legacy-referrals", "--out", str(out), "--learners", "300"]) == 0
    from cdp.referrals.legacy_import import read_sheet

    assert len(read_sheet(out)) > 10
