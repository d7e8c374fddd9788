"""
# Incremental sync from every source (`cdp_sync`)

**What it does.** Every 2 hours, for every source stream with a polling API (the sources in
`cdp/sources/registry.py` that have a connector: the LMS, CRM, payments, ledger, surveys, referrals and the
Galaxy Digital volunteer platform), it reads what changed at the source since its watermark (less a 30-minute
overlap, so nothing at the boundary is missed), lands every payload in `raw.records`, validates each record,
upserts the good ones into `core` by source id, keeps the rejected ones in `ops.quarantine` with their reason,
advances the watermark and records counts in `ops.sync_run` and one audit event, all in one transaction per
stream.

**Tasks.** One mapped task per source and wave, `sync_<source>_people_and_reference` and
`sync_<source>_activity`, one map index per stream, each in its vendor's pool (declared in the source's
folder, `cdp.runtime.SOURCE_POOLS`: `moodle_api`, `salesforce_api`, `stripe_api`, `survey_api` for Typeform,
Zigpoll and ReferralHero, `galaxy_api`, `zendesk_api`; the ledger reads files and uses `default_pool`), so a
vendor's slots cap its concurrent calls. People and reference data sync first, one source after another (LMS
users and courses, then CRM contacts and accounts, then volunteers: each resolves its people to those already
known, so two at once could make two persons of one human); activity that points to them (enrollments,
completions, donations, shifts, hours, ...) second, even when a first-wave task failed. A task's streams sync
one at a time in the order their declared dependencies give (`after=` on each stream in
`cdp/sources/<vendor>/specs.py`: a refund after its charge), and activity that points to another source's
waits for it: Stripe before Salesforce and ReferralHero, ReferralHero before Zendesk, so a run leaves the same
warehouse whatever the timing. A last task, `summarise`, logs the totals and fails the run when any stream did
not land, so one alert names every failed stream.

**Reads** the Airflow connections `moodle`, `salesforce`, `stripe`, `ledger`, `typeform`, `zigpoll`,
`referralhero`, `galaxy` (one per source, named after it) and `warehouse`. **Writes** `raw`, `core`, `ops`,
`audit`; updates the Assets `warehouse.core.*`.

**An alert from it means** a stream failed after its retries: `AuthError` (the connection's credential
was refused: fix the connection), `TransientError` (the source stayed down or rate-limited: the next run
catches up from the watermark, nothing is lost), `ContractError` (the source changed a field name or shape:
the connector needs a change, the stream stays stopped and its watermark unmoved). Other streams still land.
A task that stays *queued* waits for a slot in its pool (UI: Admin, Pools), or its pool does not exist
(`airflow pools list`; docker-compose's airflow-init and `make run` create them).

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
from airflow.sdk import CronTriggerTimetable, dag, task

from cdp.runtime import (
    default_args,
    run_failure_notifier,
    source_pool,
    sync_deadline,
    sync_stream_task,
    warehouse_asset,
)
from cdp.sources.order import sync_plan
from cdp.sync.specs import BY_KEY, SCHEDULED_SPECS

WAVES = {1: "people_and_reference", 2: "activity"}
# One mapped task per source and wave, `sync_<source>_<wave name>`, in the source's pool; its streams in
# dependency order and the tasks it waits for, from what each stream declares (`after=`, its wave).
PLAN = sync_plan(SCHEDULED_SPECS)
STREAMS = {task.name: list(task.keys) for task in PLAN}


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
    mapped: dict[tuple[str, int], object] = {}
    for planned in PLAN:
        sync = task(
            sync_stream_task,
            task_id=f"sync_{planned.source}_{WAVES[planned.wave]}",
            pool=source_pool(planned.source),
            # One stream of the task at a time, in map-index order (the scheduler queues a task's map indexes
            # lowest first), which is the order of the streams' declared dependencies: a refund after its
            # charge, a soft credit after its opportunity, a completion after its enrollment.
            max_active_tis_per_dagrun=1,
            # Runs after the tasks it waits for have finished, even one that failed: what did land is
            # still worth syncing against (an orphan waits in the quarantine for the next run).
            trigger_rule="all_done" if planned.upstream else "all_success",
            outlets=sorted({warehouse_asset(BY_KEY[key].entity) for key in planned.keys}, key=str),
        )
        mapped[planned.name] = sync.expand(stream_key=list(planned.keys))
        # The edges come from the streams' declarations (see cdp/sources/<vendor>/specs.py): people sources
        # one after another (LMS, CRM, volunteers), activity after all of them, and activity that points to
        # another source's activity after it (Stripe before Salesforce's gifts and ReferralHero, ReferralHero
        # before Zendesk), so a run leaves the same warehouse whatever the timing.
        for upstream in planned.upstream:
            mapped[upstream] >> mapped[planned.name]

    @task(trigger_rule="all_done")
    def summarise(streams: list[list[dict | None]]) -> dict[str, int]:
        """Totals for the run; fails the run (and so alerts once) when any stream did not land."""
        from cdp.sync.report import summarise_run

        results = [result for per_task in streams for result in per_task]
        return summarise_run(results, [key for keys in STREAMS.values() for key in keys])

    summarise(list(mapped.values()))


cdp_sync()
