"""
# Data-health page (`cdp_data_health`)

**What it does.** Every hour it reads the warehouse's own bookkeeping and writes one static page (HTML with
inline SVG charts, nothing loaded from the internet) and the same figures as JSON: the freshness of each
source stream (its watermark and last successful sync), the count-diff history of the last 30 days, open
quarantine counts per stream, the duplicate rate of the recent dedupe runs, the last reconciliation,
consent coverage per purpose, and every KPI view `mart.kpi_<name>_monthly` (found in the catalog at run
time, labelled by its view comment). An empty warehouse gives a page that says "no data yet".

**Where to see it.** In the Airflow UI: *Browse → Data health* (the `cdp_data_health` plugin, served
under `/cdp-data-health/` to users logged in to Airflow who may read this DAG; nothing without the login);
the files are `index.html` and `data-health.json` in the data-health folder (`CDP_DATA_HEALTH_DIR`, locally
`.cdp/data-health/`; in docker-compose the `data-health` volume). Figures only, never a person's values:
quarantine reasons by their class (the quoted value cut away), a broken KPI view by its error's kind.

**Reads** `warehouse` (`ops.sync_watermark`, `ops.sync_run`, `ops.count_diff`, `ops.quarantine`,
`ops.dedupe_run`, `ops.reconciliation_*`, `mart.outreach_decision`, `mart.kpi_*_monthly`), read-only.
**Writes** only the two files.

**An alert from it means** the page could not be built: the warehouse is unreachable (check the
`warehouse` connection) or the folder is not writable. The data itself is not judged here: the other DAGs
alert on it. A KPI view that fails to read shows its error (kind and SQLSTATE) on the page and does not
fail the run.

**Re-run / backfill.** Safe at any time; each run replaces the page with the current state. Past
intervals are not back-filled (`catchup=False`): the page is about now.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from cdp.runtime import after_first_sync, default_args, run_failure_notifier


@dag(
    # Hourly, at 45 minutes past (after the even-hour syncs have landed); after a fresh start, first once
    # the first complete cdp_sync has landed (cdp.runtime.after_first_sync), so its first page is whole.
    schedule=after_first_sync("45 * * * *"),
    # No start date: with one, switching the DAG on would run its latest past cron time at once, whatever
    # run_immediately says (Airflow 3.3); the first complete sync starts it instead.
    start_date=None,
    catchup=False,
    max_active_runs=1,
    tags=["ops", "quality"],
    default_args=default_args(retries=2, after_first_sync=True),
    on_failure_callback=run_failure_notifier(),
    doc_md=__doc__,
)
def cdp_data_health() -> None:
    @task
    def write_page(ti=None) -> dict[str, object]:
        from cdp.data_health import build
        from cdp.runtime import actor_of, warehouse_url

        return build(warehouse_url(), actor_of(ti))

    write_page()


cdp_data_health()
