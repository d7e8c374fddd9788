"""End to end: `migration_phase1_audit` on sandbox legacy exports finds exactly the mess the generator planted."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from support import snapshot

from cdp.migration.legacy_formats import EXPORTS
from cdp_sandbox.generator import World
from cdp_sandbox.legacy import FIXABLE, UNFIXABLE, write_exports

TABLES = (
    "raw.legacy_file", "raw.records", "ops.legacy_profile", "ops.legacy_profile_metric",
    "ops.legacy_clean_record", "ops.legacy_review", "audit.audit_events", "core.person",
    "core.person_source_id", "core.enrollment", "core.donation", "ops.quarantine",
)  # fmt: skip


@pytest.fixture
def exports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warehouse_url: str):
    folder = tmp_path / "exports"
    truth = write_exports(World(seed=11, learners=300), folder)
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
    # The folder and reports_folder params must lie in the configured folders.
    monkeypatch.setenv("CDP_IMPORT_FOLDERS", str(tmp_path))
    monkeypatch.setenv("CDP_REPORT_FOLDERS", str(tmp_path))
    return folder, truth


def _run(load_dag, folder: Path, reports: Path):
    return load_dag("migration_phase1_audit").test(
        run_conf={"folder": str(folder), "reports_folder": str(reports)}, logical_date=None
    )


@pytest.mark.slow
def test_phase1_profile_matches_the_planted_truth_and_cleanup_reaches_the_target(
    load_dag, warehouse_url: str, exports, tmp_path: Path
) -> None:
    folder, truth = exports
    reports = tmp_path / "reports"

    dag_run = _run(load_dag, folder, reports)

    assert dag_run.state == "success"
    with psycopg.connect(warehouse_url) as conn:
        landed = dict(
            conn.execute(
                "SELECT stream, count(*) FROM raw.records WHERE source = 'legacy' GROUP BY 1"
            ).fetchall()
        )
        unparseable = conn.execute(
            "SELECT count(*) FROM raw.records WHERE source = 'legacy' AND payload ->> 'parse_error' IS NOT NULL"
        ).fetchone()[0]
        profiles = {
            stage: (records, errors, float(rate), summary)
            for stage, records, errors, rate, summary in conn.execute(
                "SELECT stage, records, records_with_errors, accuracy_rate, summary FROM ops.legacy_profile"
            )
        }
        metrics = {
            (export, kind, subject): (count, total)
            for export, kind, subject, count, total in conn.execute(
                "SELECT export, kind, subject, count, total FROM ops.legacy_profile_metric WHERE stage = 'before'"
            )
        }
        queued = dict(conn.execute("SELECT rule, count(*) FROM ops.legacy_review GROUP BY 1").fetchall())
        statuses = dict(
            conn.execute("SELECT status, count(*) FROM ops.legacy_clean_record GROUP BY 1").fetchall()
        )
        events = conn.execute(
            "SELECT action, entity_type, details FROM audit.audit_events WHERE dag_id = 'migration_phase1_audit'"
            " AND action IN ('import', 'correction') ORDER BY seq"
        ).fetchall()

    # Every row of every file is in raw, the unparseable one with its reason.
    assert landed == truth.rows
    assert unparseable == sum(
        k.count("unparseable") for k in (list(d.values()) for d in truth.defects.values())
    )

    # Per export and rule, the profile counts exactly the planted rows; completeness from the planted blanks.
    for export in EXPORTS:
        planted = truth.kind_counts(export)
        found = {subject: count for (e, kind, subject), (count, _) in metrics.items()
                 if e == export and kind in ("invalid", "duplicates", "orphans", "conflicts")}  # fmt: skip
        assert found == planted, export
        parsed = truth.rows[export] - planted.get("unparseable", 0)
        for column, blanks in truth.blanks[export].items():
            assert metrics[(export, "completeness", column)] == (parsed - blanks, parsed), (export, column)
    conflicts = profiles["before"][3]["conflicting_ids"]
    planted_conflicts = list(truth.conflict_kinds.values())
    assert conflicts == {kind: planted_conflicts.count(kind) for kind in set(planted_conflicts)}
    assert profiles["before"][3]["orphans"] == truth.kind_counts("lms_enrollments")["orphan"]

    # Accuracy before and after, as the truth has them; after cleanup above the 98% target.
    assert profiles["before"][2] == pytest.approx(truth.accuracy_before())
    assert profiles["after"][2] == pytest.approx(truth.accuracy_after())
    assert profiles["before"][2] < 0.98 < profiles["after"][2]

    # What cannot be fixed is queued, by rule; the rest was fixed or set aside as a duplicate.
    all_kinds = [kind for d in truth.defects.values() for kind in d.values()]
    assert queued == {kind: all_kinds.count(kind) for kind in UNFIXABLE if kind in all_kinds}
    assert statuses["duplicate"] == all_kinds.count("exact_duplicate")
    assert statuses["fixed"] == sum(1 for kind in all_kinds if kind in FIXABLE - {"exact_duplicate"})
    assert statuses["review"] == sum(1 for kind in all_kinds if kind in UNFIXABLE)

    # One import event per file, one correction event per export; counts and row ids, no values.
    assert [e[1] for e in events if e[0] == "import" and e[1].startswith("legacy.")] == [
        f"legacy.{export}" for export, (names, _) in EXPORTS.items() for _ in names
    ]
    # The load into core: one import event per export it loads, counts only.
    loads = {e[1]: e[2] for e in events if e[0] == "import" and e[1].startswith("legacy_core.")}
    assert set(loads) == {
        f"legacy_core.{e}" for e in ("lms_learners", "crm_contacts", "donors", "lms_enrollments")
    }
    assert all(d["core_rows_changed"] > 0 for d in loads.values())
    corrections = {e[1]: e[2] for e in events if e[0] == "correction"}
    assert set(corrections) == {f"legacy.{export}" for export in EXPORTS}
    assert corrections["legacy.lms_learners"]["fixed"] == {
        rule: truth.kind_counts("lms_learners")[rule]
        for rule in ("email_not_normalised", "phone_not_e164", "date_not_iso")
    }
    assert "@" not in json.dumps([e[2] for e in events])

    # The report for people and the machine-readable summary.
    pages = sorted(reports.glob("legacy_audit_*.html"))
    summary = json.loads(next(reports.glob("legacy_audit_*.json")).read_text())
    assert (
        len(pages) == 1
        and "<svg" in pages[0].read_text()
        and "http" not in pages[0].read_text().replace('xmlns="http://www.w3.org/2000/svg"', "")
    )
    assert summary["after"]["accuracy_rate"] == pytest.approx(truth.accuracy_after())


@pytest.mark.slow
def test_rerun_of_phase1_on_the_same_files_changes_nothing(
    load_dag, warehouse_url: str, exports, tmp_path: Path
) -> None:
    folder, _ = exports
    reports = tmp_path / "reports"
    assert _run(load_dag, folder, reports).state == "success"
    before = snapshot(warehouse_url, TABLES)
    report = {path.name: path.read_bytes() for path in reports.iterdir()}

    assert _run(load_dag, folder, reports).state == "success"

    assert snapshot(warehouse_url, TABLES) == before
    assert {path.name: path.read_bytes() for path in reports.iterdir()} == report
