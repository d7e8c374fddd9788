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


#: A `warehouse` connection nobody answers: a run that used it instead of its family's would fail.
UNREACHABLE = "postgresql://nobody@127.0.0.1:9/cdp"


@pytest.mark.slow
def test_the_reconcile_dag_connects_as_its_own_family_connection(
    load_dag, warehouse_url: str, logins, slack_receiver: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole DAG (reconcile, alert, the audit anchor after each task) as a login of cdp_reconcile."""
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", UNREACHABLE)
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_RECONCILE", logins("cdp_reconcile"))

    dag_run = load_dag("cdp_reconcile").test(logical_date=None)

    assert dag_run.state == "success"
    with psycopg.connect(warehouse_url) as conn:
        runs = conn.execute("SELECT count(*) FROM ops.reconciliation_run").fetchone()[0]
    assert runs == 1


def test_a_family_without_its_own_connection_falls_back_to_warehouse_with_a_warning(
    warehouse_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from cdp.runtime.context import warehouse_url as family_url

    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
    with caplog.at_level("WARNING", logger="cdp.runtime.context"):
        assert family_url("cdp_dedupe") == warehouse_url
    assert "cdp_dedupe has no connection of its own (warehouse_dedupe)" in caplog.text

    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_DEDUPE", UNREACHABLE)
    assert family_url("cdp_dedupe") == UNREACHABLE
    assert family_url("cdp_sync") == warehouse_url
