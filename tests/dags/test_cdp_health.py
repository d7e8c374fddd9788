"""End to end: the health DAG runs under Airflow and leaves its row and audit event in the warehouse; it
fails when alerts would be lost. Runs are as triggered from the CLI or the UI: no data interval."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from cdp import audit
from cdp.warehouse import migrations
from cdp_sandbox.server import SandboxServer


@pytest.mark.slow
def test_health_dag_records_a_check_and_an_audit_event(
    load_dag,
    warehouse_url: str,
    anchor_file: Path,
    slack_receiver: SandboxServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)

    dag_run = load_dag("cdp_health").test(logical_date=None)

    assert dag_run.state == "success"
    assert slack_receiver.slack_messages == []  # the alert connection was probed, nothing was posted
    with psycopg.connect(warehouse_url) as conn:
        checks = conn.execute(
            "SELECT run_id, audit_chain_ok, schema_version FROM ops.health_check"
        ).fetchall()
        events = conn.execute(
            "SELECT action, dag_id, run_id, task_id FROM audit.audit_events WHERE action = 'health_check'"
        ).fetchall()
    assert checks == [(dag_run.run_id, True, migrations.head_revision(warehouse_url))]
    assert events == [("health_check", "cdp_health", dag_run.run_id, "check_warehouse")]
    anchors = audit.read_anchors(anchor_file)
    assert [anchor.seq for anchor in anchors] == [1]  # the head after the health_check event was exported


@pytest.mark.slow
def test_health_dag_fails_when_the_schema_is_behind(
    load_dag, empty_database_url: str, anchor_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", empty_database_url)

    dag_run = load_dag("cdp_health").test(logical_date=None)

    assert dag_run.state == "failed"
    assert not anchor_file.exists()


@pytest.mark.slow
def test_health_dag_fails_when_alerts_would_be_lost(
    load_dag, warehouse_url: str, anchor_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
    monkeypatch.delenv("AIRFLOW_CONN_SLACK_ALERTS", raising=False)

    dag_run = load_dag("cdp_health").test(logical_date=None)

    assert dag_run.state == "failed"
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states == {"check_warehouse": "success", "check_alerts": "failed"}
