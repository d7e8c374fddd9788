"""
# Monthly financial reconciliation (`cdp_reconcile`)

**What it does.** On the 2nd of every month it reconciles the previous month: donations in the warehouse
(`core.donation`), Stripe's balance transactions (`core.balance_transaction`) and the finance ledger
(`core.ledger_posting`), matched by financial transaction id, exact to the cent and per currency. Each gift
is classed: matched; amount mismatch; currency mismatch; in the warehouse but not the ledger; in the
ledger but not the warehouse; only at Stripe; not at Stripe; duplicate; and its fees, refunds and the
month's payouts accounted or not. The CRM is a fourth side: a gift whose closed-won Salesforce Opportunity
amount or currency differs from the donation is `crm_amount_mismatch` (to the cent; fix it in the CRM).
Stripe balance transactions whose charge never reached the warehouse wait in `ops.quarantine` ("unknown
charge"); each is listed as `stripe_quarantined` with its amount and quarantine id, so the report says
where that money is (held, not lost: a backfill of `cdp_sync` for the charge's window lands the charge,
and the next sync re-tries the quarantined rows). Results go to `ops.reconciliation_run`, `_total` (per class and
currency, the month-over-month history) and `_result` (every differing row, traced to donor and campaign),
and a report for finance (HTML and CSV) under `.cdp/reports/finance/`.

**Reads** `warehouse`; **writes** `ops.reconciliation_*`, `ops.alert_state`, one audit event per run.

**An alert from it means** a difference nobody has explained: the data alert lists the classes and
amounts, and the run fails (one failure alert) so it cannot be missed. Look at the report; fix the source
(a missed sync: backfill `cdp_sync`; a ledger keying error: correct the ledger), or, for a donation that
is wrong in the warehouse, request a correction (`cdp finance correction request …`, approved by finance).
A known, accepted difference is recorded in `ops.reconciliation_explanation` and no longer fails the run.

**Re-run / backfill.** Any month on demand: trigger with param `month` = `YYYY-MM`. Each run is a new row
in `ops.reconciliation_run`; the report and history use each month's latest run.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from cdp.runtime import default_args, run_failure_notifier


@dag(
    schedule="0 7 2 * *",  # 07:00 UTC on the 2nd of each month: last month, once the ledger export is in
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["finance"],
    default_args=default_args(retries=2),
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
    @task
    def reconcile() -> dict[str, object]:
        """Counted and matched in SQL; the report is written beside the results."""
        from cdp.finance.reconcile import reconcile_month
        from cdp.paths import state_dir
        from cdp.runtime import actor_from_context, warehouse_url

        context = get_current_context()
        month = context["params"].get("month")
        if not month:
            moment = context.get("logical_date") or context.get("data_interval_end") or pendulum.now("UTC")
            month = pendulum.instance(moment).start_of("month").subtract(months=1).format("YYYY-MM")
        result = reconcile_month(
            warehouse_url(), month, actor=actor_from_context(context), airflow_run_id=context["run_id"],
            report_dir=state_dir() / "reports" / "finance",
        )  # fmt: skip
        return result.as_dict()

    @task
    def alert(result: dict[str, object]) -> bool:
        """One grouped data alert for the month, repeated only when its differences change."""
        from cdp.finance.results import format_minor
        from cdp.quality.data_alerts import Finding, alert_once
        from cdp.runtime import actor_from_context, data_alert_sender, warehouse_url

        context = get_current_context()
        unexplained = [t for t in result["totals"] if t["unexplained"]]
        findings = []
        if unexplained:
            lines = "; ".join(
                f"{t['class_']} {t['currency']}: {t['unexplained']} rows, {format_minor(t['difference_minor'], t['currency'])}"
                for t in unexplained
            )
            findings.append(Finding(
                f"reconcile:{result['month'][:7]}",
                "|".join(f"{t['class_']}:{t['currency']}:{t['unexplained']}:{t['difference_minor']}" for t in unexplained),
                f"*{result['month'][:7]}* does not reconcile: {result['unexplained']} unexplained differences "
                f"({lines}). Report: {result['report_html']}",
            ))  # fmt: skip
        outcome = alert_once(
            warehouse_url(), scope=f"reconcile:{result['month'][:7]}", title="Reconciliation",
            run_id=context["run_id"], findings=findings, send=data_alert_sender(), actor=actor_from_context(context),
        )  # fmt: skip
        return outcome.sent

    @task
    def require_reconciled(result: dict[str, object], alerted: bool) -> None:
        """Fails the run (and so alerts once) when the month has unexplained differences."""
        if result["status"] != "passed":
            raise RuntimeError(
                f"{result['month'][:7]} did not reconcile: {result['unexplained']} unexplained differences "
                f"(reconciliation run {result['run_id']}, report {result['report_html']})"
            )

    result = reconcile()
    require_reconciled(result, alert(result))


cdp_reconcile()
