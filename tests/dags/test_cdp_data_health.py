"""End to end: the data-health DAG runs as triggered from the CLI or the UI (no data interval) and writes its
page; it is scheduled by the clock and, once, by the first complete sync."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cdp.runtime.assets import WAREHOUSE_READY_URI


@pytest.mark.slow
def test_a_run_without_a_data_interval_writes_the_page(
    load_dag, warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
    monkeypatch.setenv("CDP_DATA_HEALTH_DIR", str(tmp_path))

    dag_run = load_dag("cdp_data_health").test(logical_date=None)

    assert dag_run.state == "success"
    assert dag_run.data_interval_start is None and dag_run.logical_date is None
    assert (tmp_path / "index.html").read_text().startswith("<!")
    assert isinstance(json.loads((tmp_path / "data-health.json").read_text()), dict)


def test_it_waits_for_the_first_complete_sync_not_the_clock(load_dag) -> None:
    schedule = load_dag("cdp_data_health").timetable
    assert [asset.uri for asset in schedule.asset_condition.objects] == [WAREHOUSE_READY_URI]
    assert schedule.timetable.expression == "45 * * * *"
