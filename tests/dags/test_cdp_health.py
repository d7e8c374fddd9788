"""End to end: the health DAG runs under Airflow and leaves its row and audit event in the warehouse."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from cdp import audit
from cdp.warehouse import migrations


@pytest.mark.slow
def test_health_dag_records_a_check_and_an_audit_event(
    load_dag, warehouse_url: str, anchor_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)

    dag_run = load_dag("cdp_health").test()

    assert dag_run.state == "success"
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

    dag_run = load_dag("cdp_health").test()

    assert dag_run.state == "failed"
    assert not anchor_file.exists()
