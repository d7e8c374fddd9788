"""End to end: `cdp_count_diff` under Airflow asks every source for a window and alerts once, grouped."""

from __future__ import annotations

import psycopg
import pytest

from cdp.runtime import source_pool
from cdp.sync.specs import SCHEDULED_SPECS
from cdp_sandbox.devserver import connection_env
from cdp_sandbox.server import SandboxServer


@pytest.mark.slow
def test_count_diff_dag_records_every_stream_and_sends_one_grouped_alert(
    load_dag, warehouse_url: str, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
    for source in {spec.source for spec in SCHEDULED_SPECS}:
        monkeypatch.setenv(
            *connection_env(source, sandbox.settings(source, max_attempts=2, retry_base_delay=0.01))
        )

    # Nothing was ever synced: every stream with records that day was never fetched.
    dag_run = load_dag("cdp_count_diff").test(
        run_conf={"window_start": "2024-03-01T00:00:00Z", "window_end": "2024-03-02T00:00:00Z"},
        logical_date=None,  # as `airflow dags trigger` or the UI start it: no data interval
    )

    assert dag_run.state == "success"
    assert {
        task.task_id: task.pool for task in load_dag("cdp_count_diff").tasks if task.task_id != "alert"
    } == {f"count_{source}": source_pool(source) for source in {spec.source for spec in SCHEDULED_SPECS}}
    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute(
            "SELECT source || '.' || stream, source_count, raw_count, status, loss_location FROM ops.count_diff"
            " WHERE run_id = %s",
            (dag_run.run_id,),
        ).fetchall()
    assert sorted(r[0] for r in rows) == sorted(spec.key for spec in SCHEDULED_SPECS)
    alerted = sorted(key for key, source_count, raw, status, where in rows if status == "alert")
    assert alerted and all(
        (raw, where) == (0, "never_fetched") for _, n, raw, status, where in rows if status == "alert"
    )
    (message,) = [m["payload"]["text"] for m in sandbox.slack_messages]
    assert message.startswith(f":warning: *Count diff* — run `{dag_run.run_id}`")
    assert sorted(line.split("*")[1] for line in message.splitlines() if line.startswith("• ")) == alerted
