"""
# Funder reports of a closed month (`cdp_funder_report`)

**What it does.** After each monthly reconciliation (`cdp_reconcile`'s Asset `finance.reconciliation`, whose
event names the month), it writes the funder report of that month for every fund (each NPSP General Accounting
Unit still in the CRM, and a deleted one with activity that month): one folder per fund in
`.cdp/funder_reports/funder-reports-YYYY-MM/<GAU Id>/`, the files of `cdp funds report` (`impact.csv`,
`outcomes.csv` with the survey outcomes before/after, `report.html`, `drilldown.sql`, `changes.csv`), with
`funds.csv` (which fund is in which folder and the audit events its report names) and `SHA256SUMS`. All funds
are read in one read-only snapshot. No run time, login or host is written: a re-run for a closed month gives the
same bytes unless the data changed, and an audited correction of a reported row (or a reviewed program change
behind its attribution) is named in that fund's `changes.csv` and HTML by its audit sequence number.

**Task.** `write_reports`: the month's folder, written beside the old one and swapped in whole; returns the
funds and the audit events their reports name.

**Reads** `mart.fund_impact_monthly`, `mart.fund_impact_rows`, `core.fund`, `core.donation_allocation` and
five columns of `audit.readable_events` (no row images); **writes** only the folder (and, like every task, the
audit head to the anchor file: `seq, hash` of `audit.audit_events` and `audit.seal()`). **Connects as** its own
login through the connection `warehouse_funder_report`: a member of `cdp_funder_report` (revision 0032), which
reads those and nothing else (no person, no survey answer) and changes no table.

**An alert from it means** no report of the month was written (the warehouse was unreachable, a grant is
missing, or the month has not ended): the previous folder of the month, if any, is untouched. Fix the cause and
re-run.

**Re-run / backfill.** Trigger with param `month` = `YYYY-MM` (default: the month the triggering reconciliation
names, else the month before the run); the month's folder is replaced whole, and compares byte for byte with
an earlier run (`SHA256SUMS`). `cdp funds report --fund F --from M --to M --out DIR` writes one fund by hand.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from cdp.runtime import default_args, month_param, month_to_write, reconciliation_asset, run_failure_notifier


@dag(
    # On every cdp_reconcile run (monthly, 07:00 UTC on the 2nd, or a month reconciled on demand).
    schedule=reconciliation_asset(),
    start_date=None,
    catchup=False,
    max_active_runs=1,
    tags=["finance"],
    default_args=default_args(retries=2),
    on_failure_callback=run_failure_notifier(),
    params={
        "month": month_param("the reports"),
    },
    doc_md=__doc__,
)
def cdp_funder_report() -> None:
    @task
    def write_reports(
        params: dict | None = None, ti=None, logical_date=None, triggering_asset_events=None
    ) -> dict[str, object]:
        """Every fund's report of the month, in one folder swapped in whole."""
        import psycopg

        from cdp.finance.impact_report import write_month
        from cdp.paths import state_dir
        from cdp.runtime import warehouse_url

        month = month_to_write(params, triggering_asset_events, logical_date)
        with psycopg.connect(warehouse_url(ti.dag_id)) as conn:
            reports = write_month(conn, month, state_dir() / "funder_reports")
        return {"month": month, "folder": str(reports.folder), "funds": reports.funds}

    write_reports()


cdp_funder_report()
