"""
# Referral program migration (`referral_migration`)

**What it does.** Runs the referral program's move from its legacy spreadsheet to ReferralHero, every two
hours during the parallel run:

1. **Imports the legacy spreadsheet** (param `legacy_file`, CSV or XLSX; skipped when empty; only a file
   inside the folders of the `CDP_IMPORT_FOLDERS` setting, else the run fails before reading it): every row to
   `raw.records` (`legacy_referrals.spreadsheet`), parsed rows to `ops.referral_legacy`, unparsable rows to
   `ops.quarantine` with the reason, repeated rows marked `duplicate_of`. The same file again changes nothing.
2. **Chooses the pilot**: a deterministic, stratified 5–10% (param `pilot_share`, default 7%) of learners
   active in the year before `as_of` (default today), by country, age band and first-enrolment year, in
   `ops.referral_pilot`.
3. **Parallel run**: the sheet against the platform (`core.referral`, synced by `cdp_sync`), one row per
   disagreeing referral in `ops.referral_discrepancy` (`attributed_differently`, `missing_on_platform`,
   `missing_in_legacy`; resolved when a later run no longer finds it) and a CSV report in
   `$CDP_HOME/reports/referral_parallel_run/<run id>.csv` (ids only).
4. **Fulfils rewards**: each reward ReferralHero unlocked is marked sent on the platform exactly once
   (idempotency key, ledger `ops.reward_fulfilment`). While the platform is down, rewards go to the manual
   fallback queue `ops.reward_fulfilment_queue`; the next run that reaches the platform drains it.
5. **Outage check**: no referral tracked for `outage_hours` (default 6) while at least `outage_min_signups`
   (default 5) course sign-ups came in.
6. Logs the KPI marts `mart.kpi_referral_*_monthly` (conversion, volume, reward redemption time, and the
   share of support tickets about referrals, from the Zendesk tickets `cdp_sync` lands in core.support_ticket).

**Reads** `warehouse` (core.referral, core.reward, core.enrollment, core.person), the `referralhero`
connection (reward status updates) and the spreadsheet file; **writes** `raw.records`, `ops.referral_*`,
`ops.reward_fulfilment`, `ops.quarantine`, `ops.alert_state` and audit events (`import`, `pilot_selection`,
`reward_fulfilment`, `reward_fallback_queued`).

**An alert from it means**: `referral_outage:referralhero`, *Referral tracking outage*: referrals stopped
arriving while sign-ups continue. Check the ReferralHero widget and campaign, and `cdp_sync`'s
referralhero.subscribers runs; rewards meanwhile wait in the manual queue. Sent once per outage, and once
when it clears. A failed run alerts through the usual failure notifier.

**Re-run / backfill.** Every step is idempotent: re-running with the same inputs changes nothing. Trigger
with params to import a new sheet or look at another day (`as_of`, ISO date). No catchup: each run looks at
the warehouse as it is.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from cdp.runtime import after_first_sync, default_args, run_failure_notifier, source_pool


def _as_of(params: dict) -> pendulum.DateTime:
    return pendulum.parse(params["as_of"]) if params.get("as_of") else pendulum.now("UTC")


@dag(
    # Every 2 hours at :50, after the 2-hourly syncs on the hour; after a fresh start, first once the first
    # complete cdp_sync has landed (cdp.runtime.after_first_sync).
    schedule=after_first_sync("50 */2 * * *"),
    # No start date: with one, switching the DAG on would run its latest past cron time at once, whatever
    # run_immediately says (Airflow 3.3); the first complete sync starts it instead.
    start_date=None,
    catchup=False,
    max_active_runs=1,
    tags=["migration", "referrals"],
    default_args=default_args(retries=2, after_first_sync=True),
    on_failure_callback=run_failure_notifier(),
    params={
        "legacy_file": Param(
            "",
            type="string",
            description="path of the legacy sheet (CSV/XLSX) in an import folder; empty: skip",
        ),
        "as_of": Param(None, type=["null", "string"], description="ISO 8601 UTC; default now"),
        "pilot_share": Param(0.07, type="number", minimum=0.05, maximum=0.10),
        "outage_hours": Param(6, type="number", minimum=1),
        "outage_min_signups": Param(5, type="integer", minimum=1),
    },
    doc_md=__doc__,
)
def referral_migration() -> None:
    @task
    def import_legacy_sheet(params: dict | None = None, ti=None) -> dict[str, object] | None:
        """The legacy spreadsheet into raw and ops.referral_legacy; rejects to ops.quarantine."""
        from cdp.referrals.legacy_import import import_sheet
        from cdp.runtime import actor_of, warehouse_url
        from cdp.runtime.params import import_param

        if not params.get("legacy_file"):
            return None
        path = import_param(params["legacy_file"], parameter="legacy_file")  # only inside CDP_IMPORT_FOLDERS
        result = import_sheet(warehouse_url(), path, actor=actor_of(ti), run_id=ti.run_id)
        return result.as_dict()

    @task
    def choose_pilot(params: dict | None = None, ti=None) -> dict[str, object]:
        """The deterministic, stratified pilot share of active learners."""
        from cdp.referrals.pilot import select_pilot
        from cdp.runtime import actor_of, warehouse_url

        result = select_pilot(warehouse_url(), as_of=_as_of(params).date(), share=float(params["pilot_share"]),
                              actor=actor_of(ti), run_id=ti.run_id)  # fmt: skip
        return {
            "active": result.active,
            "chosen": result.chosen,
            "added": result.added,
            "removed": result.removed,
        }

    @task
    def parallel_run(
        imported: dict[str, object] | None, pilot: dict[str, object], ti=None
    ) -> dict[str, object]:
        """Legacy sheet vs platform: discrepancies to ops.referral_discrepancy and a CSV report."""
        from cdp.referrals.parallel_run import run_parallel
        from cdp.runtime import actor_of, warehouse_url

        result = run_parallel(warehouse_url(), actor=actor_of(ti), run_id=ti.run_id)
        return {"counts": result.counts, "matched": result.matched, "new": result.new,
                "resolved": result.resolved, "report": str(result.report)}  # fmt: skip

    @task(pool=source_pool("referralhero"))  # calls the ReferralHero API
    def fulfil_rewards(ti=None) -> dict[str, object]:
        """Unlocked rewards marked sent once on the platform, or queued for people while it is down."""
        from cdp.referrals.fulfilment import fulfil_rewards as fulfil
        from cdp.runtime import actor_of, source_settings, warehouse_url

        result = fulfil(
            warehouse_url(), source_settings("referralhero"), actor=actor_of(ti), run_id=ti.run_id
        )
        return dict(result.__dict__)

    @task
    def check_outage(params: dict | None = None, ti=None) -> dict[str, object]:
        """No referrals for N hours while sign-ups continue: one grouped data alert, once per outage."""
        from cdp.referrals.outage import alert_on_outage
        from cdp.runtime import actor_of, data_alert_sender, warehouse_url

        check, outcome = alert_on_outage(
            warehouse_url(), until=_as_of(params), hours=float(params["outage_hours"]),
            min_signups=int(params["outage_min_signups"]), run_id=ti.run_id, send=data_alert_sender(),
            actor=actor_of(ti),
        )  # fmt: skip
        return {"referrals": check.referrals, "signups": check.signups, "sent": outcome.sent,
                "cleared": list(outcome.cleared)}  # fmt: skip

    @task
    def report_kpis(parallel: dict[str, object], fulfilment: dict[str, object], ti=None) -> dict[str, object]:
        """The latest month of each referral KPI, in the log and the task's return value."""
        from cdp.referrals.kpis import latest_kpis
        from cdp.runtime import actor_of, warehouse_url

        return latest_kpis(warehouse_url(), actor_of(ti))

    parallel = parallel_run(import_legacy_sheet(), choose_pilot())
    fulfilment = fulfil_rewards()
    parallel >> fulfilment
    report_kpis(parallel, fulfilment)
    check_outage()


referral_migration()
