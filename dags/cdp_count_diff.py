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

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from cdp.runtime import default_args, run_failure_notifier, source_pool
from cdp.sync.specs import SCHEDULED_SPECS

SOURCES = list(dict.fromkeys(spec.source for spec in SCHEDULED_SPECS))


def _count_source(source: str) -> dict[str, object]:
    """One source count call and one SQL statement per stream of ``source``; results kept in ops.count_diff."""
    from cdp.quality.count_diff import day_window, run_count_diff
    from cdp.runtime import actor_from_context, source_settings, warehouse_url
    from cdp.sync.specs import SCHEDULED_SPECS

    context = get_current_context()
    params = context["params"]
    start, end = day_window(
        context.get("logical_date") or context["data_interval_end"] or pendulum.now("UTC")
    )
    if params.get("window_start"):
        start = pendulum.parse(params["window_start"])
        end = pendulum.parse(params["window_end"]) if params.get("window_end") else start.add(days=1)
    result = run_count_diff(
        warehouse_url(), source_settings, run_id=context["run_id"], window_start=start, window_end=end,
        actor=actor_from_context(context), specs=[spec for spec in SCHEDULED_SPECS if spec.source == source],
    )  # fmt: skip
    return {"diffs": [d.as_dict() for d in result.diffs], "failures": result.failures,
            "window_start": start.isoformat()}  # fmt: skip


@dag(
    schedule="30 6 * * *",  # every day at 06:30 UTC, after the night's 2-hourly syncs
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["quality"],
    default_args=default_args(retries=2),
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
    def alert(per_source: list[dict[str, object]]) -> dict[str, object]:
        """One grouped data alert for the run, only if something changed; fails if a stream was not counted."""
        from datetime import datetime

        from cdp.quality.count_diff import CountDiff
        from cdp.quality.data_alerts import Finding, alert_once, count_diff_findings, quarantine_findings
        from cdp.runtime import actor_from_context, data_alert_sender, warehouse_url

        context = get_current_context()
        url, actor = warehouse_url(), actor_from_context(context)
        counted = {
            "diffs": [diff for part in per_source for diff in part["diffs"]],
            "failures": {key: why for part in per_source for key, why in part["failures"].items()},
            "window_start": per_source[0]["window_start"],
        }
        diffs = [CountDiff.from_row({**d, "window_start": datetime.fromisoformat(d["window_start"]),
                                     "window_end": datetime.fromisoformat(d["window_end"])})
                 for d in counted["diffs"]]  # fmt: skip
        findings = count_diff_findings(diffs)
        findings += quarantine_findings(url, datetime.fromisoformat(counted["window_start"]), actor)
        findings += [
            Finding(f"count_diff:{key}", "could not count", f"*{key}*: could not be counted: {why[:300]}")
            for key, why in counted["failures"].items()
        ]
        outcome = alert_once(
            url, scope="count_diff:,quarantine:", title="Count diff", run_id=context["run_id"],
            findings=findings, send=data_alert_sender(), actor=actor,
        )  # fmt: skip
        if counted["failures"]:
            raise RuntimeError(f"could not count {sorted(counted['failures'])}: see the data alert")
        return {"sent": outcome.sent, "new_or_changed": list(outcome.new_or_changed)}

    alert(counted)


cdp_count_diff()
