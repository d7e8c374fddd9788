"""DAG parameters that name files read and write only inside the configured folders (issue 15, item 7).

The attack: `referral_migration` with `legacy_file` set to Airflow's own config landed its `secret_key` in
raw and in quarantine rows a viewer can read. Phase 1's `folder` and `reports_folder` had the same shape.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from cdp.paths import PathNotAllowed, import_folders, import_path, path_within, report_path
from cdp_sandbox.generator import World
from cdp_sandbox.legacy import write_exports


@pytest.fixture
def allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "imports"
    folder.mkdir()
    monkeypatch.setenv("CDP_IMPORT_FOLDERS", str(folder))
    monkeypatch.setenv("CDP_REPORT_FOLDERS", str(tmp_path / "reports"))
    return folder


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """Stands in for airflow.cfg: a file the worker can read, outside every import folder."""
    path = tmp_path / "airflow.cfg"
    path.write_text("[core]\nsecret_key = s3cr3t-from-the-worker\njwt_secret = also-secret\n")
    return path


def test_a_path_inside_an_import_folder_is_accepted_resolved(allowed: Path) -> None:
    (allowed / "sheets").mkdir()
    assert (
        import_path(str(allowed / "sheets" / ".." / "sheet.csv"), parameter="legacy_file")
        == allowed / "sheet.csv"
    )
    assert import_path(allowed, parameter="folder") == allowed


@pytest.mark.parametrize(
    "how", ["outside", "dotdot", "symlink", "symlinked_folder", "relative", "prefix_twin"]
)
def test_paths_that_leave_the_import_folders_are_refused(
    allowed: Path, secret_file: Path, tmp_path: Path, how: str
) -> None:
    if how == "outside":
        value = str(secret_file)
    elif how == "dotdot":
        value = f"{allowed}/../airflow.cfg"
    elif how == "symlink":
        (allowed / "sheet.csv").symlink_to(secret_file)
        value = str(allowed / "sheet.csv")
    elif how == "symlinked_folder":
        (allowed / "etc").symlink_to(tmp_path)
        value = str(allowed / "etc" / "airflow.cfg")
    elif how == "relative":
        value = "airflow.cfg"
    else:  # /x/imports-evil is not inside /x/imports although the text starts the same
        twin = tmp_path / "imports-evil"
        twin.mkdir()
        value = str(twin / "sheet.csv")

    with pytest.raises(PathNotAllowed, match="legacy_file"):
        import_path(value, parameter="legacy_file")


def test_report_folders_are_their_own_setting(allowed: Path, tmp_path: Path) -> None:
    assert (
        report_path(tmp_path / "reports" / "phase1", parameter="reports_folder")
        == tmp_path / "reports" / "phase1"
    )
    with pytest.raises(PathNotAllowed, match="CDP_REPORT_FOLDERS"):
        report_path(allowed, parameter="reports_folder")
    with pytest.raises(PathNotAllowed, match="outside the allowed folders"):
        report_path("/etc/cron.d", parameter="reports_folder")


def test_the_setting_must_list_absolute_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDP_IMPORT_FOLDERS", "imports")
    with pytest.raises(PathNotAllowed, match="absolute"):
        import_folders()
    monkeypatch.delenv("CDP_IMPORT_FOLDERS")
    assert all(folder.name in {"imports", "legacy-exports"} for folder in import_folders())


def test_path_within_refuses_nul_and_empty() -> None:
    for value in ("", "   ", "/tmp/a\x00b"):
        with pytest.raises(PathNotAllowed):
            path_within(value, (Path("/tmp"),), parameter="p")


def _task_states(dag_run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def _landed(url: str) -> tuple[int, int, int]:
    with psycopg.connect(url) as conn:
        raw = conn.execute("SELECT count(*) FROM raw.records").fetchone()[0]
        quarantined = conn.execute("SELECT count(*) FROM ops.quarantine").fetchone()[0]
        secrets = conn.execute(
            "SELECT count(*) FROM raw.records WHERE payload::text LIKE '%%s3cr3t%%'"
        ).fetchone()[0]
    return raw, quarantined, secrets


@pytest.mark.parametrize("how", ["airflow_cfg", "dotdot", "symlink_in_allowed_folder"])
def test_referral_migration_refuses_airflow_config_as_legacy_file_before_reading_it(
    load_dag, warehouse_url: str, allowed: Path, secret_file: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
    if how == "airflow_cfg":
        value = str(secret_file)
    elif how == "dotdot":
        value = f"{allowed}/../{secret_file.name}"
    else:
        (allowed / "legacy_referrals.csv").symlink_to(secret_file)
        value = str(allowed / "legacy_referrals.csv")
    dag = load_dag("referral_migration").partial_subset(
        "import_legacy_sheet", include_upstream=False, include_downstream=False
    )

    dag_run = dag.test(run_conf={"legacy_file": value})

    assert _task_states(dag_run) == {"import_legacy_sheet": "failed"}
    assert _landed(warehouse_url) == (0, 0, 0)


def test_referral_migration_still_imports_a_sheet_inside_an_import_folder(
    load_dag, warehouse_url: str, allowed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
    sheet = allowed / "legacy_referrals.csv"
    sheet.write_text("Ref,Referrer email,Referred email,Date,Status\nnot,a,valid,row,here\n")
    dag = load_dag("referral_migration").partial_subset(
        "import_legacy_sheet", include_upstream=False, include_downstream=False
    )

    dag_run = dag.test(run_conf={"legacy_file": str(sheet)})

    assert _task_states(dag_run) == {"import_legacy_sheet": "success"}
    assert _landed(warehouse_url)[0] >= 1


@pytest.mark.parametrize("how", ["outside", "symlinked_export"])
def test_phase1_reads_no_export_outside_the_import_folders(
    load_dag, warehouse_url: str, allowed: Path, secret_file: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, how: str,
) -> None:  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
    if how == "outside":
        folder = tmp_path / "elsewhere"
        write_exports(World(seed=3, learners=20), folder)
    else:  # an allowed folder whose export is a symlink to a readable file elsewhere
        elsewhere = tmp_path / "elsewhere"
        write_exports(World(seed=3, learners=20), elsewhere)
        folder = allowed / "exports"
        folder.mkdir()
        (folder / "lms_learners.csv").symlink_to(elsewhere / "lms_learners.csv")
    dag = load_dag("migration_phase1_audit").partial_subset(
        "import_exports", include_upstream=False, include_downstream=False
    )

    dag_run = dag.test(run_conf={"folder": str(folder)})

    assert _task_states(dag_run) == {"import_exports": "failed"}
    assert _landed(warehouse_url) == (0, 0, 0)
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("SELECT count(*) FROM raw.legacy_file").fetchone()[0] == 0


def test_phase1_writes_no_report_outside_the_report_folders(
    load_dag, warehouse_url: str, allowed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
    folder = allowed / "exports"
    write_exports(World(seed=3, learners=20), folder)
    outside = tmp_path / "cron.d"
    dag = load_dag("migration_phase1_audit")

    dag_run = dag.test(run_conf={"folder": str(folder), "reports_folder": str(outside)})

    states = _task_states(dag_run)
    assert states["import_exports"] == "success" and states["write_report"] == "failed"
    assert not outside.exists()


def test_phase1_report_files_are_not_written_through_a_planted_symlink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cdp.migration import audit_report

    monkeypatch.setattr(audit_report, "render_html", lambda summaries, target: "<html></html>")
    monkeypatch.setattr(audit_report, "summary_json", lambda summaries: "{}")
    target = tmp_path / "victim.txt"
    target.write_text("unchanged")
    reports = tmp_path / "reports"
    reports.mkdir()
    summaries = {"before": {"fingerprint": "abcdef0123456789"}}
    (reports / "legacy_audit_abcdef012345.html").symlink_to(target)

    with pytest.raises(OSError):
        audit_report.write_report(reports, summaries)
    assert target.read_text() == "unchanged"
    assert os.path.islink(reports / "legacy_audit_abcdef012345.html")
