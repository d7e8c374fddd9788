"""
# Monthly financial reconciliation (`cdp_reconcile`)

**What it does.** On the 2nd of every month it reconciles the previous month: donations in the warehouse
(`core.donation`), Stripe's balance transactions (`core.balance_transaction`) and the finance ledger
(`core.ledger_posting`), matched by financial transaction id, exact to the cent and per currency. Each gift
is classed: matched; amount mismatch; currency mismatch; in the warehouse but not the ledger; in the
ledger but not the warehouse; only at Stripe; not at Stripe; duplicate; and its fees, refunds and the
month's payouts accounted or not. The CRM is a fourth side: a gift whose closed-won Salesforce Opportunity
amount or currency differs from the donation is `crm_amount_mismatch` (to the cent; fix it in the CRM).
A gift with no Opportunity at all is `not_in_crm` (once the CRM has been read past the month's end).
Stripe balance transactions whose charge never reached the warehouse wait in `ops.quarantine` ("unknown
charge"); each is listed as `stripe_quarantined` with its amount and quarantine id, so the report says
where that money is (held, not lost: a backfill of `cdp_sync` for the charge's window lands the charge,
and the next sync re-tries the quarantined rows). Results go to `ops.reconciliation_run`, `_total` (per class and
currency, the month-over-month history) and `_result` (every differing row, traced to donor and campaign),
and a report for finance (HTML and CSV) under `.cdp/reports/finance/`.

**Queue.** `reconcile` goes to the heavy queue when the deployment names one (`CDP_HEAVY_QUEUE`;
docker-compose's `airflow-worker-heavy` serves it), the alert and the check to the default queue.

**Reads** `warehouse`; **writes** `ops.reconciliation_*`, `ops.alert_state`, one audit event per run, and
the Asset `finance.reconciliation` (its event names the month; `cdp_evidence` writes that month's evidence pack).

**An alert from it means** a difference nobody has explained: the data alert lists the classes and
amounts, and the run fails (one failure alert) so it cannot be missed. Look at the report; fix the source
(a missed sync: backfill `cdp_sync`; a ledger keying error: correct the ledger), or, for a donation that
is wrong in the warehouse, request a correction (`cdp finance correction request …`, approved by finance).
A known, accepted difference is recorded in `ops.reconciliation_explanation` and no longer fails the run.

**Re-run / backfill.** Any month on demand: trigger with param `month` = `YYYY-MM`. Each run is a new row
in `ops.reconciliation_run`; the report and history use each month's latest run.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from cdp.runtime import (
    after_first_sync,
    default_args,
    heavy_task_args,
    reconciliation_asset,
    run_failure_notifier,
)


@dag(
    # 07:00 UTC on the 2nd of each month: last month, once the ledger export is in; after a fresh start,
    # also once the first complete cdp_sync has landed (cdp.runtime.after_first_sync).
    schedule=after_first_sync("0 7 2 * *"),
    # No start date: with one, switching the DAG on would run its latest past cron time at once, whatever
    # run_immediately says (Airflow 3.3); the first complete sync starts it instead.
    start_date=None,
    catchup=False,
    max_active_runs=1,
    tags=["finance"],
    default_args=default_args(retries=2, after_first_sync=True),
    on_failure_callback=run_failure_notifier(),
    params={
        "month": Param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}-\d{2}$",
            description="YYYY-MM to reconcile; default the month before the run",
        ),
    },  # fmt: skip
    doc_md=__doc__,
)
def cdp_reconcile() -> None:
    # The heavy queue, where a deployment has one. Its event names the month: the cdp_evidence DAG then writes
    # that month's evidence pack.
    @task(outlets=[reconciliation_asset()], **heavy_task_args())
    def reconcile(
        params: dict | None = None, ti=None, logical_date=None, data_interval_end=None, outlet_events=None
    ) -> dict[str, object]:
        """Counted and matched in SQL; the report is written beside the results."""
        from cdp.finance.reconcile import previous_month, reconcile_month
        from cdp.paths import state_dir
        from cdp.runtime import actor_of, warehouse_url

        month = params.get("month") or previous_month(logical_date or data_interval_end)
        result = reconcile_month(
            warehouse_url(ti.dag_id), month, actor=actor_of(ti), airflow_run_id=ti.run_id,
            report_dir=state_dir() / "reports" / "finance",
        )  # fmt: skip
        if outlet_events is not None:
            outlet_events[reconciliation_asset()].extra = {"month": month[:7], "status": result.status}
        return result.as_dict()

    @task
    def alert(result: dict[str, object], ti=None) -> bool:
        """One grouped data alert for the month, repeated only when its differences change."""
        from cdp.finance.reconcile import reconciliation_alert
        from cdp.runtime import actor_of, data_alert_sender, warehouse_url

        return reconciliation_alert(
            warehouse_url(ti.dag_id), result, run_id=ti.run_id, send=data_alert_sender(), actor=actor_of(ti)
        )

    @task
    def require_reconciled(result: dict[str, object], alerted: bool) -> None:
        """Fails the run (and so alerts once) when the month has unexplained differences."""
        from cdp.finance.reconcile import require_month_reconciled

        require_month_reconciled(result)

    result = reconcile()
    require_reconciled(result, alert(result))


cdp_reconcile()
