"""
# Daily count diffs (`cdp_count_diff`)

**What it does.** Every morning, for every stream `cdp_sync` polls (every source in
`cdp/sources/registry.py` with a connector: Moodle, Salesforce, Stripe, the ledger, the surveys, ReferralHero, Galaxy's
volunteers, shifts and hours; one task per source, `count_<source>`, in its vendor's pool), it
asks the **source itself** how many records it holds for yesterday (UTC), counts in the warehouse how many
of them landed in `raw` and how many reached `core` or wait in `ops.quarantine`, and keeps the result in
`ops.count_diff`. A loss is located: *never fetched* (the source has them, we never received them),
*rejected* (received and quarantined with a reason) or *dropped* (received, then neither in core nor
quarantined). It also looks at records quarantined since yesterday.

**Reads** the source connections (`moodle`, `salesforce`, `stripe`, …, `galaxy`) and `warehouse`; **writes**
`ops.count_diff`, `ops.alert_state`.

**An alert from it means** a stream's source and core differ by more than its threshold (default 5%,
per stream in `ops.count_diff_threshold`), or one side is zero and the other is not. The message names the
stream, the window, the numbers, where the loss sits and the command that repairs it — usually a backfill
of `cdp_sync` for the window (`airflow backfill create --dag-id cdp_sync --from-date … --to-date …
--reprocess-behavior completed`). The same situation is not reported twice; a cleared one is reported once.
A failed run (a source could not be asked) alerts once, naming the stream.

**Re-run / backfill.** Idempotent: re-running a day updates that day's rows. Check any window by
triggering with params `window_start` / `window_end` (ISO 8601, UTC).
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from cdp.runtime import after_first_sync, default_args, run_failure_notifier, source_pool
from cdp.sync.specs import SCHEDULED_SPECS

SOURCES = list(dict.fromkeys(spec.source for spec in SCHEDULED_SPECS))


def _count_source(
    source: str,
    params: dict | None = None,
    run_id: str | None = None,
    ti=None,
    logical_date=None,
    data_interval_end=None,
) -> dict[str, object]:
    """One source count call and one SQL statement per stream of ``source``; results kept in ops.count_diff."""
    from cdp.quality.count_diff import requested_window, run_count_diff
    from cdp.runtime import actor_of, source_settings, warehouse_url
    from cdp.sync.specs import SCHEDULED_SPECS

    # A manual or CLI-triggered run has no data interval: the window then comes from the params or now.
    start, end = requested_window(
        params.get("window_start"), params.get("window_end"), logical_date or data_interval_end
    )
    result = run_count_diff(
        warehouse_url(), source_settings, run_id=run_id, window_start=start, window_end=end, actor=actor_of(ti),
        specs=[spec for spec in SCHEDULED_SPECS if spec.source == source],
    )  # fmt: skip
    return {"diffs": [d.as_dict() for d in result.diffs], "failures": result.failures,
            "window_start": start.isoformat()}  # fmt: skip


@dag(
    # Every day at 06:30 UTC, after the night's 2-hourly syncs; after a fresh start, first once the first
    # complete cdp_sync has landed (cdp.runtime.after_first_sync).
    schedule=after_first_sync("30 6 * * *"),
    # No start date: with one, switching the DAG on would run its latest past cron time at once, whatever
    # run_immediately says (Airflow 3.3); the first complete sync starts it instead.
    start_date=None,
    catchup=False,
    max_active_runs=1,
    tags=["quality"],
    default_args=default_args(retries=2, after_first_sync=True),
    on_failure_callback=run_failure_notifier(),
    params={
        "window_start": Param(None, type=["null", "string"], description="ISO 8601 UTC; default yesterday"),
        "window_end": Param(None, type=["null", "string"], description="ISO 8601 UTC; default today 00:00"),
    },
    doc_md=__doc__,
)
def cdp_count_diff() -> None:
    # One counting task per source, in its vendor's pool (cdp.runtime.SOURCE_POOLS), like cdp_sync's tasks.
    counted = [
        task(_count_source, task_id=f"count_{source}", pool=source_pool(source))(source=source)
        for source in SOURCES
    ]

    @task
    def alert(per_source: list[dict[str, object]], run_id: str | None = None, ti=None) -> dict[str, object]:
        """One grouped data alert for the run, only if something changed; fails if a stream was not counted."""
        from cdp.quality.data_alerts import count_diff_alert
        from cdp.runtime import actor_of, data_alert_sender, warehouse_url

        outcome = count_diff_alert(
            warehouse_url(), per_source, run_id=run_id, send=data_alert_sender(), actor=actor_of(ti)
        )
        return {"sent": outcome.sent, "new_or_changed": list(outcome.new_or_changed)}

    alert(counted)


cdp_count_diff()
