"""The evidence pack DAG: runs on the reconciliation's Asset, as its own least-privileged login, writes the
month's folder, and fails (alerting once) when the audit chain fails verification, with the pack written."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest

from cdp.runtime.assets import RECONCILIATION_NAME, reconciled_month
from cdp_sandbox.server import SandboxServer

MONTH = f"{datetime.now(UTC):%Y-%m}"
#: A `warehouse` connection nobody answers: a run that used it instead of its family's would fail.
UNREACHABLE = "postgresql://nobody@127.0.0.1:9/cdp"


def test_the_evidence_dag_runs_on_the_reconciliations_asset(load_dag) -> None:
    evidence, reconcile = load_dag("cdp_evidence"), load_dag("cdp_reconcile")
    assert evidence.timetable.asset_condition.name == RECONCILIATION_NAME
    assert [outlet.name for outlet in reconcile.get_task("reconcile").outlets] == [RECONCILIATION_NAME]


@dataclass(frozen=True)
class _Asset:
    name: str


def test_the_month_comes_from_the_newest_reconciliation_event() -> None:
    reconciliation, other = _Asset(RECONCILIATION_NAME), _Asset("warehouse.ready")
    events = {
        reconciliation: [
            SimpleNamespace(extra={"month": "2026-10"}),
            SimpleNamespace(extra={"month": "2026-11"}),
        ],
        other: [SimpleNamespace(extra={"month": "2030-01"})],
    }
    assert reconciled_month(events) == "2026-11"
    assert reconciled_month({other: events[other]}) is None
    assert reconciled_month(None) is None


@pytest.mark.slow
def test_the_dag_writes_the_pack_as_its_own_login(
    load_dag, warehouse_url: str, logins, anchor_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", UNREACHABLE)
    evidence = logins("cdp_evidence")
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_EVIDENCE", evidence)

    dag_run = load_dag("cdp_evidence").test(run_conf={"month": MONTH}, logical_date=None)

    assert dag_run.state == "success"
    folder = tmp_path / "home" / "evidence" / f"evidence-{MONTH}"
    assert json.loads((folder / "audit_chain/verification.json").read_text())["verification"] == "passed"
    assert (
        json.loads((folder / "reconciliation/sign_off.json").read_text())["status"] == "no reconciliation run"
    )
    assert "privileges/privileges.csv" in (folder / "SHA256SUMS").read_text()
    with psycopg.connect(warehouse_url) as conn:
        taken_by = conn.execute("SELECT taken_by FROM ops.privilege_snapshot").fetchall()
    assert taken_by == [(evidence.split("//", 1)[1].split(":", 1)[0],)]


@pytest.mark.slow
def test_a_broken_chain_fails_the_run_with_the_pack_written(
    load_dag, warehouse_url: str, anchor_file: Path, tmp_path: Path, slack_receiver: SandboxServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("CDP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute("SELECT audit.record_event('test', 'thing', '1')")
        conn.execute("SELECT audit.record_event('test', 'thing', '2')")
        conn.execute("SELECT audit.seal()")
        conn.execute("SET session_replication_role = replica")  # what a superuser could do
        conn.execute("UPDATE audit.audit_events SET entity_id = '3' WHERE entity_id = '1'")

    dag_run = load_dag("cdp_evidence").test(run_conf={"month": MONTH}, logical_date=None)

    assert dag_run.state == "failed"
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    assert states == {"write_pack": "success", "require_verified_chain": "failed"}
    folder = tmp_path / "home" / "evidence" / f"evidence-{MONTH}"
    assert json.loads((folder / "audit_chain/verification.json").read_text())["verification"] == "FAILED"
