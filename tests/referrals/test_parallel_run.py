"""The parallel run finds exactly the discrepancies the generator planted (no more, no fewer), matches
friends despite email typos, writes the same rows to its report, and changes nothing when re-run."""

from __future__ import annotations

import csv
from pathlib import Path

import psycopg
from support import snapshot

from cdp.referrals.legacy_import import import_sheet
from cdp.referrals.parallel_run import compare, run_parallel
from cdp.warehouse import Actor
from cdp_sandbox.legacy_referrals import LegacySheet

ACTOR = Actor("pytest")


def _found(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return dict(
            conn.execute(
                "SELECT referral_key, kind FROM ops.referral_discrepancy WHERE resolved_at IS NULL"
            ).fetchall()
        )


def test_the_report_finds_exactly_the_planted_discrepancies(
    warehouse_url: str, synced: None, sheet: LegacySheet, sheet_csv: Path, tmp_path: Path
) -> None:
    import_sheet(warehouse_url, sheet_csv, actor=ACTOR, run_id="run-1")
    result = run_parallel(warehouse_url, actor=ACTOR, run_id="run-1", report_path=tmp_path / "report.csv")

    kinds = set(sheet.discrepancies.values())
    assert kinds == {"attributed_differently", "missing_on_platform", "missing_in_legacy"}
    assert _found(warehouse_url) == sheet.discrepancies
    assert result.matched_by_typo == len(sheet.typos) > 0
    with (tmp_path / "report.csv").open() as handle:
        report = {row["referral_key"]: row["kind"] for row in csv.DictReader(handle)}
    assert report == sheet.discrepancies
    assert "@" not in (tmp_path / "report.csv").read_text(), "the report names no one"


def test_rerunning_changes_nothing_and_a_fixed_referral_is_resolved(
    warehouse_url: str, synced: None, sheet: LegacySheet, sheet_csv: Path, tmp_path: Path
) -> None:
    import_sheet(warehouse_url, sheet_csv, actor=ACTOR, run_id="run-1")
    run_parallel(warehouse_url, actor=ACTOR, run_id="run-1", report_path=tmp_path / "1.csv")
    before = snapshot(
        warehouse_url, ("ops.referral_discrepancy", "ops.referral_legacy", "audit.audit_events")
    )

    again = run_parallel(warehouse_url, actor=ACTOR, run_id="run-2", report_path=tmp_path / "2.csv")

    assert (again.new, again.resolved) == (0, 0)
    assert (
        snapshot(warehouse_url, ("ops.referral_discrepancy", "ops.referral_legacy", "audit.audit_events"))
        == before
    )

    # Staff correct one misattributed row in the sheet's table: the next run resolves that discrepancy only.
    key = next(k for k, kind in sheet.discrepancies.items() if kind == "attributed_differently")
    with psycopg.connect(warehouse_url) as conn:
        referrer = conn.execute(
            "SELECT platform_referrer_id, legacy_ref FROM ops.referral_discrepancy WHERE referral_key = %s",
            (key,),
        ).fetchone()
        conn.execute(
            "UPDATE ops.referral_legacy l"
            " SET referrer_name = x.payload ->> 'name', referrer_email = x.payload ->> 'email'"
            " FROM raw.records x WHERE x.source = 'referralhero' AND x.source_record_id = %s AND l.legacy_ref = %s",
            referrer,
        )
    third = run_parallel(warehouse_url, actor=ACTOR, run_id="run-3", report_path=tmp_path / "3.csv")
    assert third.resolved == 1
    assert _found(warehouse_url) == {k: v for k, v in sheet.discrepancies.items() if k != key}


def test_a_changed_attribution_is_caught() -> None:
    """Breaking the rule: a sheet row crediting someone else must show up, and matching rows must not."""
    platform = [
        {"subscriber_id": "s1", "name": "Ana Silva", "email": "ana@example.org", "referrer_source_id": None,
         "signed_up_at": None, "in_pilot": False},
        {"subscriber_id": "s2", "name": "Bo Li", "email": "bo@example.org", "referrer_source_id": "s1",
         "signed_up_at": None, "in_pilot": True},
        {"subscriber_id": "s3", "name": "Cy Ode", "email": "cy@example.org", "referrer_source_id": None,
         "signed_up_at": None, "in_pilot": False},
    ]  # fmt: skip
    row = {"legacy_ref": "R1", "referrer_name": "Ana Silva", "referrer_email": "ana@example.org",
           "referred_name": "Bo Li", "referred_email": "bo@exmaple.org", "referred_on": None,
           "duplicate_of": None}  # fmt: skip
    assert compare([row], platform)[0] == []  # a typo in the friend's email still matches
    found, _ = compare([{**row, "referrer_name": "Cy Ode", "referrer_email": "cy@example.org"}], platform)
    assert [
        (d.referral_key, d.kind, d.legacy_referrer_id, d.platform_referrer_id, d.in_pilot) for d in found
    ] == [("s2", "attributed_differently", "s3", "s1", True)]
    assert [d.kind for d in compare([], platform)[0]] == ["missing_in_legacy"]
