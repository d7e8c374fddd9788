"""
# Incremental sync from every source (`cdp_sync`)

**What it does.** Every 2 hours, one task per source stream (dynamic task mapping) reads what changed at
the source since its watermark (less a 30-minute overlap, so nothing at the boundary is missed), lands
every payload in `raw.records`, validates each record, upserts the good ones into `core` by source id,
keeps the rejected ones in `ops.quarantine` with their reason, advances the watermark and records counts
in `ops.sync_run` and one audit event, all in one transaction per stream. People and reference data
(LMS users, CRM contacts, courses) sync first; activity that points to them (enrollments, completions,
donations) second, even when a first-wave stream failed. A last task logs the totals and fails the run
when any stream did not land, so one alert names every failed stream.

**Reads** the Airflow connections `moodle`, `salesforce`, `stripe`, `ledger`, `typeform`, `zigpoll`, `referralhero` (one per source, named after it) and
`warehouse`. **Writes** `raw`, `core`, `ops`, `audit`; updates the Assets `warehouse.core.*`.

**An alert from it means** a stream failed after its retries: `AuthError` (the connection's credential
was refused: fix the connection), `TransientError` (the source stayed down or rate-limited: the next run
catches up from the watermark, nothing is lost), `ContractError` (the source changed a field name or shape:
the connector needs a change, the stream stays stopped and its watermark unmoved). Other streams still land.

**Re-run / backfill.** Every run is idempotent: clearing a task or re-running an interval changes nothing
that is already right. Each run's data interval is the 2 hours before its run time, and a run reads that
interval (from its start, or from the watermark when that is earlier, less the 30-minute overlap) up to its
end, so a backfill re-reads exactly the past intervals it covers; the watermark never moves backwards.
After an outage, or to repair a window a count-diff alert names:

    airflow backfill create --dag-id cdp_sync --from-date 2026-11-29T02:00:00+00:00 \
        --to-date 2026-11-29T08:00:00+00:00 --max-active-runs 1 --reprocess-behavior completed

(one run per 2-hour tick in the range, oldest first; `--reprocess-behavior completed` also re-runs
intervals that already succeeded, `failed` only those that failed, `none` only missing ones; add
`--dry-run` to list the runs first). From the UI: the DAG's *Trigger* menu, *Backfill*. A backfill gives
the same warehouse as the scheduled runs of those intervals would have (`tests/dags/test_backfill_airflow.py`
proves it with a real scheduler).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task

from cdp.runtime import default_args, run_failure_notifier, sync_deadline, warehouse_asset
from cdp.sync.specs import SPECS

PEOPLE_AND_REFERENCE = [spec.key for spec in SPECS if spec.wave == 1]
ACTIVITY = [spec.key for spec in SPECS if spec.wave == 2]


def _sync(stream_key: str) -> dict[str, object]:
    from cdp.runtime import actor_from_context, source_settings, warehouse_url
    from cdp.sources import registry
    from cdp.sync.engine import sync_stream
    from cdp.sync.specs import BY_KEY

    context = get_current_context()
    spec = BY_KEY[stream_key]
    stream = registry.stream(spec.source, spec.stream, source_settings(spec.source))
    result = sync_stream(
        warehouse_url(),
        stream,
        spec,
        actor=actor_from_context(context),
        run_id=context["run_id"],
        interval_start=context.get("data_interval_start"),
        interval_end=context.get("data_interval_end") or pendulum.now("UTC"),
    )
    return result.as_dict()


@dag(
    # Every 2 hours on the hour; each run's data interval is the 2 hours before it, so a backfill run
    # re-reads its whole interval (a bare cron string would give every run a zero-length interval).
    schedule=CronTriggerTimetable("0 */2 * * *", timezone="UTC", interval=timedelta(hours=2)),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["sync"],
    default_args=default_args(retries=3),
    on_failure_callback=run_failure_notifier(),
    deadline=sync_deadline(),  # alerts when a run has not finished within its 2-hour window
    doc_md=__doc__,
)
def cdp_sync() -> None:
    @task(outlets=sorted({warehouse_asset(spec.entity) for spec in SPECS if spec.wave == 1}, key=str))
    def sync_people_and_reference(stream_key: str) -> dict[str, object]:
        return _sync(stream_key)

    @task(
        trigger_rule="all_done",
        outlets=sorted({warehouse_asset(spec.entity) for spec in SPECS if spec.wave == 2}, key=str),
    )
    def sync_activity(stream_key: str) -> dict[str, object]:
        return _sync(stream_key)

    @task(trigger_rule="all_done")
    def summarise(people: list[dict | None], activity: list[dict | None]) -> dict[str, int]:
        """Totals for the run; fails the run (and so alerts once) when any stream did not land."""
        from cdp.sync.report import summarise_run

        return summarise_run([*people, *activity], [*PEOPLE_AND_REFERENCE, *ACTIVITY])

    people = sync_people_and_reference.expand(stream_key=PEOPLE_AND_REFERENCE)
    activity = sync_activity.expand(stream_key=ACTIVITY)
    people >> activity
    summarise(people, activity)


cdp_sync()
