"""The processing DAG wakes on the intake's Asset and on a timer, and maps only streams that have a spec."""

from __future__ import annotations

from cdp.webhooks import WEBHOOK_ASSET_URI, WEBHOOK_STREAM_KEYS, specs_with_webhooks


def test_the_processing_dag_runs_on_the_intake_asset_and_every_30_minutes(load_dag) -> None:
    dag = load_dag("cdp_webhook_intake")
    assert set(dag.tags) == {"privacy"}
    schedule = dag.timetable
    assert [asset.uri for asset in schedule.asset_condition.objects] == [WEBHOOK_ASSET_URI]
    assert schedule.timetable.expression == "*/30 * * * *"
    assert {task.task_id for task in dag.tasks} == {"process", "check_backlog"}
    assert dag.get_task("check_backlog").trigger_rule == "all_done"


def test_only_streams_with_a_sync_spec_are_processed() -> None:
    keys = {spec.key for spec in specs_with_webhooks()}
    assert keys <= set(WEBHOOK_STREAM_KEYS)
