"""The warehouse as Airflow Assets: which DAG runs when, ordered by data rather than by the clock.

- ``warehouse_asset("core.course_completion")``: one Asset per warehouse table. Its events come only from
  runs that changed rows in it: a task lists the alias ``warehouse_changes()`` among its outlets and adds the
  table's Asset to it (``emit_changes``) only when it landed something, so a consumer scheduled on a table
  (``migration_phase3_completion_triggers`` on completions) does not wake for a sync that found nothing new.
  A plain Asset outlet would emit an event on every successful try, changed or not.
- ``warehouse_ready()``: one event, from the first ``cdp_sync`` run that landed every stream. The DAGs
  that read synced data (dedupe, count diff, reconciliation, the phase DAGs, the data-health page) are
  scheduled with ``after_first_sync(cron)`` and no start date: their clock never fires at the moment they
  are switched on (``never_at_switch_on``), and the first complete sync runs them once, right after it.
  So a fresh ``make run`` lands the data first and judges it second, never a half-landed warehouse.
- ``after_first_sync_and_on_changes(cron, table)``: the same, and also whenever a sync changed rows in
  ``table`` (phase 3 on completions). The first sync's own table events would start such a DAG halfway
  through that sync.
- The cron time of any of these DAGs may also fall inside the first sync: their tasks get
  ``skip_before_first_complete_sync_hook`` as ``pre_execute`` (``default_args(after_first_sync=True)``), so
  such a run is skipped, doing nothing, until the first complete sync (whose ``warehouse.ready`` event then
  starts the DAG).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import Asset, AssetAlias, AssetOrTimeSchedule, CronTriggerTimetable

WAREHOUSE_CHANGES_ALIAS = "warehouse.changes"
WAREHOUSE_READY_NAME = "warehouse.ready"
WAREHOUSE_READY_URI = "cdp://warehouse/ready"


def warehouse_asset(entity: str) -> Asset:
    """The Airflow Asset for a warehouse table: downstream DAGs run when rows in it changed."""
    from airflow.sdk import Asset

    schema, table = entity.split(".", 1)
    return Asset(name=f"warehouse.{entity}", uri=f"cdp://warehouse/{schema}/{table}")


def warehouse_changes() -> AssetAlias:
    """The outlet of every task that writes warehouse tables: resolved, per run, to the tables it changed."""
    from airflow.sdk import AssetAlias

    return AssetAlias(name=WAREHOUSE_CHANGES_ALIAS)


def warehouse_ready() -> Asset:
    """Updated once: when the first ``cdp_sync`` run has landed every stream (see the module docstring)."""
    from airflow.sdk import Asset

    return Asset(name=WAREHOUSE_READY_NAME, uri=WAREHOUSE_READY_URI)


RECONCILIATION_NAME = "finance.reconciliation"
RECONCILIATION_URI = "cdp://warehouse/ops/reconciliation_run"


def reconciliation_asset() -> Asset:
    """Updated by every ``cdp_reconcile`` run that reconciled a month (passed or not); its event's extra names
    the month (``{"month": "YYYY-MM"}``). The ``cdp_evidence`` DAG writes that month's evidence pack on it."""
    from airflow.sdk import Asset

    return Asset(name=RECONCILIATION_NAME, uri=RECONCILIATION_URI)


def reconciled_month(triggering_asset_events: Any) -> str | None:
    """The newest month named by the reconciliation events that triggered a run (None: no such event)."""
    if not triggering_asset_events:
        return None
    months = [
        str(event.extra["month"])
        for asset, events in triggering_asset_events.items()
        if getattr(asset, "name", None) == RECONCILIATION_NAME
        for event in events
        if (getattr(event, "extra", None) or {}).get("month")
    ]
    return max(months) if months else None


def month_param(what: str) -> Any:
    """The ``month`` param of a DAG run on the reconciliation (``cdp_evidence``, ``cdp_funder_report``)."""
    from airflow.sdk import Param

    return Param(
        None,
        type=["null", "string"],
        pattern=r"^\d{4}-\d{2}$",
        description=f"YYYY-MM to write {what} for; default the reconciled month, else the month before the run",
    )


def month_to_write(params: dict | None, triggering_asset_events: Any, logical_date: Any) -> str:
    """The month a run on the reconciliation writes: its ``month`` param, else the month the triggering
    reconciliation named, else the month before the run's logical date."""
    from cdp.finance.reconcile import previous_month

    return (
        (params or {}).get("month")
        or reconciled_month(triggering_asset_events)
        or previous_month(logical_date)
    )


def after_first_sync(cron: str) -> AssetOrTimeSchedule:
    """``cron`` (UTC), except that switching the DAG on does not run it at once; the first complete sync does.

    Give the DAG ``start_date=None``: with a start date, Airflow 3.3 runs the latest past cron time as soon as
    the DAG is switched on (``run_immediately`` applies only to a DAG without one).
    """
    from airflow.sdk import AssetOrTimeSchedule

    return AssetOrTimeSchedule(timetable=never_at_switch_on(cron), assets=[warehouse_ready()])


def after_first_sync_and_on_changes(cron: str, *entities: str) -> AssetOrTimeSchedule:
    """``after_first_sync(cron)``, and also on every event of a table in ``entities`` (a sync changed rows).

    Give the DAG ``default_args(after_first_sync=True)``: table events and cron times come during the first
    sync as well.
    """
    from airflow.sdk import AssetOrTimeSchedule

    condition: Any = warehouse_ready()
    for entity in entities:
        condition = condition | warehouse_asset(entity)
    return AssetOrTimeSchedule(timetable=never_at_switch_on(cron), assets=condition)


#: the runs the scheduler starts by itself; a manual run or a backfill is a person's decision and runs
AUTOMATIC_RUN_TYPES = frozenset({"scheduled", "asset_triggered"})


def skip_before_first_complete_sync(dag_run: Any, url: str | None = None) -> None:
    """Skip (AirflowSkipException) a scheduled or asset-triggered run while no ``cdp_sync`` run has landed
    every stream yet: the first complete sync's ``warehouse.ready`` event starts the DAG once that is done."""
    from airflow.sdk.exceptions import AirflowSkipException

    from cdp.runtime.context import warehouse_url
    from cdp.sync.report import complete_sync_runs
    from cdp.sync.specs import SCHEDULED_SPECS

    run_type = str(getattr(dag_run.run_type, "value", dag_run.run_type))
    if run_type not in AUTOMATIC_RUN_TYPES:
        return
    # As the DAG's own family login when it has one (FAMILY_CONNECTIONS), like its tasks.
    url = url or warehouse_url(getattr(dag_run, "dag_id", None))
    if complete_sync_runs(url, [spec.key for spec in SCHEDULED_SPECS]) == 0:
        raise AirflowSkipException(
            f"{run_type} run before the first complete sync: the warehouse is still landing its first data;"
            " that sync's warehouse.ready event starts this DAG"
        )


def skip_before_first_complete_sync_hook(context: Mapping[str, Any]) -> None:
    """``skip_before_first_complete_sync`` as a task's ``pre_execute`` (it is handed the task's context)."""
    skip_before_first_complete_sync(context["dag_run"])


def never_at_switch_on(cron: str) -> CronTriggerTimetable:
    """``cron`` (UTC) whose first run is the next cron time, never the last past one.

    Not ``run_immediately=False``: Airflow 3.3 treats False like None and still runs the past cron time when
    the DAG is switched on within max(5 min, a tenth of the gap) after it. A zero buffer is what "never" means.
    """
    from airflow.sdk import CronTriggerTimetable

    return CronTriggerTimetable(cron, timezone="UTC", run_immediately=timedelta(0))


def changed(result: Mapping[str, Any]) -> bool:
    """Did a stream's run change the warehouse: a payload new to raw, or a quarantined record that landed."""
    return int(result.get("rows_landed") or 0) > 0 or int(result.get("rows_replayed") or 0) > 0


def emit_changes(
    outlet_events: Any, entities: Iterable[str], extra: Mapping[str, Any] | None = None
) -> list[str]:
    """Add an event for each changed table to the task's ``warehouse_changes()`` outlet; returns the tables.

    ``outlet_events`` is the task's context accessor (None outside Airflow: nothing to emit).
    """
    tables = sorted(set(entities))
    if outlet_events is None:
        return []
    accessor = outlet_events[warehouse_changes()]
    for entity in tables:
        accessor.add(warehouse_asset(entity), extra=dict(extra or {}))
    return tables
