"""End to end: the reconciliation DAG runs as triggered from the CLI or the UI, with no data interval and
no `month` param: it reconciles the month before today."""

from __future__ import annotations

import psycopg
import pytest

from cdp.finance.reconcile import previous_month
from cdp_sandbox.server import SandboxServer


@pytest.mark.slow
def test_a_run_without_a_data_interval_or_params_reconciles_last_month(
    load_dag, warehouse_url: str, slack_receiver: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)

    dag_run = load_dag("cdp_reconcile").test(logical_date=None)

    assert dag_run.state == "success"
    assert dag_run.data_interval_end is None
    with psycopg.connect(warehouse_url) as conn:
        months = [row[0] for row in conn.execute("SELECT DISTINCT month FROM ops.reconciliation_run")]
    assert [str(month)[:7] for month in months] == [previous_month(None)]
