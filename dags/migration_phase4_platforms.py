"""
# Migration phase 4: the volunteer platform and the KPI marts (`migration_phase4_platforms`)

**What it does.** Daily, it syncs the volunteer-management platform (Galaxy Digital: `users` are the
volunteers, `responses` their shift sign-ups, `hours` what they logged) with the regular sync engine:
every payload to `raw.records`, rejects to `ops.quarantine` with the reason, volunteers resolved to the
same person ids as the LMS and CRM (exact keys only: the source id, else normalised email + given name
when unambiguous; fuzzy matches are the nightly dedupe's), `core.volunteer`, `core.volunteer_shift`,
`core.volunteer_hours`, one audit event per stream. Volunteers first, then shifts and hours (whose
volunteer must be there; an orphan waits in the quarantine and is re-tried on the next run).
Since the platform was adopted, `cdp_sync` syncs the same streams every 2 hours; this DAG keeps its own
sync so that its checks always judge data read just before them. The two never clash: a stream's sync
holds a per-stream lock in the warehouse, shares one watermark, and the upsert makes a second read a no-op.
Both run in the `galaxy_api` pool.
Then it checks the phase's success criteria: every volunteer record received is landed with a person or
quarantined, and every KPI mart (`mart.kpi_*_monthly`: course completion, learner re-engagement, learners
also donors, learners also volunteers, data accuracy, duplicate rate) has one row per month with
value = numerator / denominator. The marts are views: always current, nothing to refresh.

**Reads** the Airflow connections `galaxy` (host = the API base URL, password = the API key) and
`warehouse`. **Writes** `raw`, `core.person(_source_id)`, `core.volunteer*`, `ops`, `audit`.

**An alert from it means** a task failed after its retries: a sync (`AuthError`: fix the `galaxy`
connection's key; `TransientError`: the platform was down or rate-limited, the next run catches up from
the watermark; `ContractError`: the API changed shape, the connector needs a change), or
`Phase4CheckFailed`: records went neither to core nor to the quarantine, or a mart broke its convention;
the message names the stream or mart and the numbers.

**Re-run / backfill.** Idempotent: a re-run changes nothing that is already right. Backfilling an
interval re-reads it; the watermark never moves backwards.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from cdp.runtime import (
    after_first_sync,
    default_args,
    run_failure_notifier,
    source_pool,
    sync_stream_task,
    warehouse_changes,
)
from cdp.sync.specs import VOLUNTEER_SPECS

VOLUNTEERS = [spec.key for spec in VOLUNTEER_SPECS if spec.wave == 1]
VOLUNTEER_ACTIVITY = [spec.key for spec in VOLUNTEER_SPECS if spec.wave == 2]


@dag(
    # Daily at 05:15 UTC, before the morning's count diffs and reports; after a fresh start, first once the
    # first complete cdp_sync has landed (never while it is landing: its people would race the sync's).
    schedule=after_first_sync("15 5 * * *"),
    # No start date: with one, switching the DAG on would run its latest past cron time at once, whatever
    # run_immediately says (Airflow 3.3); the first complete sync starts it instead.
    start_date=None,
    catchup=False,
    max_active_runs=1,
    tags=["migration"],
    default_args=default_args(retries=3, after_first_sync=True),
    on_failure_callback=run_failure_notifier(),
    doc_md=__doc__,
)
def migration_phase4_platforms() -> None:
    sync_volunteers = task(
        sync_stream_task,
        task_id="sync_volunteers",
        pool=source_pool("galaxy"),
        outlets=[warehouse_changes()],  # core.volunteer, when the run changed it
    )
    sync_volunteer_activity = task(
        sync_stream_task,
        task_id="sync_volunteer_activity",
        pool=source_pool("galaxy"),
        outlets=[warehouse_changes()],  # core.volunteer_shift / _hours, when the run changed them
    )

    @task
    def check_success_criteria() -> dict[str, object]:
        from cdp.migration.platforms import check_phase
        from cdp.runtime import warehouse_url

        return check_phase(warehouse_url())

    volunteers = sync_volunteers.expand(stream_key=VOLUNTEERS)
    activity = sync_volunteer_activity.expand(stream_key=VOLUNTEER_ACTIVITY)
    volunteers >> activity >> check_success_criteria()


migration_phase4_platforms()
