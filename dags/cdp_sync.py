"""
# Incremental sync from every source (`cdp_sync`)

**What it does.** Every 2 hours, for every source stream with a polling API (the sources in
`cdp/sources/registry.py` that have a connector: the LMS, CRM, payments, ledger, surveys, referrals and the
Galaxy Digital volunteer platform), it reads what changed at the source since its watermark (less a 30-minute
overlap, so nothing at the boundary is missed), lands every payload in `raw.records`, validates each record,
upserts the good ones into `core` by source id, keeps the rejected ones in `ops.quarantine` with their reason,
advances the watermark and records counts in `ops.sync_run` and one audit event, all in one transaction per
stream.

**Tasks.** One task per stream, `sync_<source>_<stream>` (`sync_stripe_refunds`), each in its vendor's pool
(declared in the source's folder, `cdp.runtime.SOURCE_POOLS`: `moodle_api`, `salesforce_api`, `stripe_api`,
`survey_api` for Typeform, Zigpoll and ReferralHero, `galaxy_api`, `zendesk_api`; the ledger reads files and
uses `default_pool`), so a vendor's slots cap its concurrent calls. The edges are the streams' declared
dependencies (`after=` on each stream in `cdp/sources/<vendor>/specs.py`): a refund after its charge, a soft
credit after its opportunity, Salesforce's gifts and ReferralHero after Stripe's charges, Zendesk after
ReferralHero. People and reference data sync first, one source after another (LMS users and courses, then
CRM contacts and accounts, then volunteers: each resolves its people to those already known, so two at once
could make two persons of one human); activity that points to them (enrollments, completions, donations,
shifts, hours, ...) second. A source's streams of one wave sync one at a time. A stream waits while one it
follows is running or waiting for its retry, so a parent's retry never leaves its children's rows orphaned
in the quarantine; once the parent is done, even failed, the child runs (what did land is worth syncing
against). A last task, `summarise`, logs the totals and fails the run when any stream did not land, so one
alert names every failed stream and a run never finishes green with orphans a failed parent left.

**Setup check.** The first task, `check_sources`, runs `cdp sources check` for every polled source: it
authenticates and asks each vendor whether every object, field and permission the sync reads or writes
exists. When something is missing it fails at once (no retry: an admin has to act) with the table (source,
item, problem, setup step) in its log, and so fails the run and alerts; warnings (e.g. a vendor without its
own check) are only logged. The stream tasks do not wait for it.

**Assets.** A stream's task updates its table's Asset (`warehouse.core.<table>`) only when it changed rows
(a payload new to `raw`, or a quarantined record that landed), so DAGs scheduled on a table do not wake for
nothing. The first run that lands every stream also updates `warehouse.ready` (task
`announce_first_complete_sync`, skipped on every later run): that starts the DAGs that read synced data
(dedupe, count diff, reconciliation, the migration phases, the data-health page), so after a fresh start
nothing judges a half-landed warehouse.

**Reads** the Airflow connections `moodle`, `salesforce`, `stripe`, `ledger`, `typeform`, `zigpoll`,
`surveymonkey`, `referralhero`, `galaxy` (one per source, named after it) and `warehouse`. **Writes** `raw`,
`core`, `ops`, `audit`; updates the Assets `warehouse.core.*` and, once, `warehouse.ready`.

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
    check_sources_task,
    default_args,
    run_failure_notifier,
    source_pool,
    sync_deadline,
    sync_stream_task,
    warehouse_changes,
    warehouse_ready,
)
from cdp.sources.order import stream_edges
from cdp.sync.specs import BY_KEY, SCHEDULED_SPECS

# One task per stream, `sync_<source>_<stream>`, in its source's pool, after the streams it waits for: what
# it declares (`after=`), its wave, and the stream before it of the same source and wave.
EDGES = stream_edges(SCHEDULED_SPECS)


def task_id(stream_key: str) -> str:
    return "sync_" + stream_key.replace(".", "_")


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
    # Before anything is read: what each vendor's side lacks (`cdp sources check`). Fails the run, with the
    # table in its log, when something the sync needs is missing; the streams still run (their rejects wait
    # in the quarantine), so one vendor's missing field never holds back the others.
    task(check_sources_task, task_id="check_sources")()
    synced = {}
    for key, after in EDGES.items():
        synced[key] = task(
            sync_stream_task,
            task_id=task_id(key),
            pool=source_pool(BY_KEY[key].source),
            # Waits while a stream it follows runs or waits for its retry, and runs once that one is done,
            # even failed: what did land is still worth syncing against. Its orphans then wait in the
            # quarantine, and the run fails (summarise) so it never finishes green with them.
            trigger_rule="all_done" if after else "all_success",
            # An event for the stream's table only when this run changed rows in it (cdp.runtime.assets).
            outlets=[warehouse_changes()],
        )(stream_key=key)
        for upstream in after:
            synced[upstream] >> synced[key]

    @task(trigger_rule="all_done")
    def summarise(results: list[dict | None]) -> dict[str, int]:
        """Totals for the run; fails the run (and so alerts once) when any stream did not land."""
        from cdp.sync.report import summarise_run

        return summarise_run(results, list(EDGES))

    @task(outlets=[warehouse_ready()])
    def announce_first_complete_sync(totals: dict[str, int], ti=None) -> None:
        """Skipped, so no Asset event, unless this is the first run ever to land every stream: that event
        starts the DAGs that read synced data (`cdp.runtime.after_first_sync`)."""
        from airflow.sdk.exceptions import AirflowSkipException

        from cdp.runtime import warehouse_url
        from cdp.sync.report import earlier_complete_runs

        earlier = earlier_complete_runs(warehouse_url(), ti.run_id, list(EDGES))
        if earlier:
            raise AirflowSkipException(f"{earlier} earlier run(s) already landed every stream")

    announce_first_complete_sync(summarise([synced[key] for key in EDGES]))


cdp_sync()
