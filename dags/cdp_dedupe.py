"""
# Nightly identity resolution (`cdp_dedupe`)

**What it does.** Every night it looks for people who are in the warehouse more than once (a learner who
registered twice, the same person as a Moodle user, a CRM contact and a Stripe payer). Incremental by
default: people created or changed since the last successful run are compared against everyone; trigger
it with `{"full": true}` to re-resolve everyone. The comparison is split into shards of the compared
people, one mapped task each (`score_shard`), so a Celery or Kubernetes executor spreads the work.
Certain matches are merged (`merged_into`, source identities and activity re-pointed, every moved row
recorded); possible matches, and matches a guard rail holds back (a family sharing an email or phone,
a donor and a learner with only a name in common), go to the review queue `ops.identity_review_queue`.
Reviewer decisions are respected by every run: a pair rejected once is never proposed again, approved
pairs are merged by the next run.

**Queue.** `score_shard` and `merge_and_queue` go to the heavy queue when the deployment names one
(`CDP_HEAVY_QUEUE`; docker-compose's `airflow-worker-heavy` serves it), the other tasks to the default queue.

**Reads** `core.person`, `ops.identity_decision`. **Writes** `ops.dedupe_run` (the run report: people
compared, candidate pairs, merged, queued, rejected, duplicate rate, spike flag), `ops.identity_pair_score`,
`ops.identity_pair`, `ops.identity_merge(_move)`, `core.*` (merges) and `audit.audit_events`.
**Connects as** its own login through the connection `warehouse_dedupe`: a member of `cdp_dedupe` (revision
0027), which reads only the compared columns of people, and merges through `ops.merge_people`, so it moves
consent statements and donations without being able to read them.

**An alert from it means** either a task failed after its retries (warehouse down: the next run picks
up everything since the last successful run, nothing is lost), or *DuplicateRateSpike*: this run found
a much higher share of duplicates than recent runs, which usually means an import created people twice
(a source changed its ids, a sync ran with a broken mapping); it comes as a data alert (key
`dedupe_spike:duplicate_rate`, sent once while the spike lasts and once more when a run is back to normal)
and as the run's failure. The merges are done and every one can be undone: look at `ops.dedupe_run` and the
newest merges, undo wrong ones with `cdp dedupe unmerge MERGE_ID`, fix the import.

**Re-run / backfill.** Clearing a failed run re-runs it from its plan; a new run compares what changed
since the last successful one, so there is nothing to backfill (`catchup=False`). Staff review the queue
with `cdp dedupe review`.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from cdp.runtime import after_first_sync, default_args, heavy_task_args, run_failure_notifier


@dag(
    # Every night at 02:30 UTC, after the night's syncs; after a fresh start, first once the first complete
    # cdp_sync has landed (cdp.runtime.after_first_sync), never while it is landing.
    schedule=after_first_sync("30 2 * * *"),
    # No start date: with one, switching the DAG on would run its latest past cron time at once, whatever
    # run_immediately says (Airflow 3.3); the first complete sync starts it instead.
    start_date=None,
    catchup=False,
    max_active_runs=1,
    tags=["identity"],
    params={
        "full": Param(False, type="boolean", description="compare everyone, not only new or changed"),
        "shard_size": Param(50_000, type="integer", minimum=100, description="people compared per task"),
    },
    default_args=default_args(retries=2, after_first_sync=True),
    on_failure_callback=run_failure_notifier(),
    doc_md=__doc__,
)
def cdp_dedupe() -> None:
    @task
    def plan_run(params: dict | None = None, ti=None) -> list[int]:
        from cdp.identity.runs import DedupeSettings, start_run
        from cdp.runtime import actor_of, warehouse_url

        plan = start_run(
            warehouse_url(ti.dag_id),
            actor_of(ti),
            ti.run_id,
            full=bool(params.get("full")),
            settings=DedupeSettings(shard_size=int(params.get("shard_size") or 50_000)),
        )
        return list(range(plan.shards))

    @task(**heavy_task_args())  # the heavy queue, where a deployment has one
    def score_shard(shard: int, ti=None) -> int:
        from cdp.identity.runs import score_shard as score
        from cdp.runtime import actor_of, warehouse_url

        return score(warehouse_url(ti.dag_id), actor_of(ti), ti.run_id, shard)

    @task(**heavy_task_args())  # the heavy queue, where a deployment has one
    def merge_and_queue(ti=None) -> dict[str, int]:
        from cdp.identity.runs import apply_run
        from cdp.runtime import actor_of, warehouse_url

        report = apply_run(warehouse_url(ti.dag_id), actor_of(ti), ti.run_id)
        return {"merged": report.merged, "queued": report.queued, "rejected": report.rejected}

    @task
    def write_report(ti=None) -> dict[str, object]:
        from cdp.identity.runs import finish_run
        from cdp.runtime import actor_of, warehouse_url

        report = finish_run(warehouse_url(ti.dag_id), actor_of(ti), ti.run_id)
        return {"duplicate_rate": report.duplicate_rate, "rate_spike": report.rate_spike}

    @task
    def check_duplicate_rate(ti=None) -> None:
        """A spike is a data alert (sent once, cleared once) and fails the run."""
        from cdp.identity.runs import raise_on_spike
        from cdp.quality.data_alerts import alert_once, duplicate_spike_findings
        from cdp.runtime import actor_of, data_alert_sender, warehouse_url

        url, actor, run_id = warehouse_url(ti.dag_id), actor_of(ti), ti.run_id
        alert_once(
            url, scope="dedupe_spike:", title="Duplicates", run_id=run_id,
            findings=duplicate_spike_findings(url, run_id, actor), send=data_alert_sender(), actor=actor,
        )  # fmt: skip
        raise_on_spike(url, run_id)

    scored = score_shard.expand(shard=plan_run())
    scored >> merge_and_queue() >> write_report() >> check_duplicate_rate()


cdp_dedupe()
