"""
# Warehouse health check (`cdp_health`)

**What it does.** Every hour it connects to the warehouse, checks that the schema is at the version the code
expects, recomputes the whole audit hash chain, records the result in `ops.health_check` with an audit
event, and exports the audit head (sequence number and hash) to the anchor file outside the database.
Beside it, `check_alerts` probes the `slack_alerts` connection that every alert goes through (without
posting a message: a live Slack webhook answers an empty message with HTTP 400 `no_text`).

**Reads / writes.** Reads `audit.audit_events`; writes `ops.health_check` and `audit.audit_events`.

**An alert from it means** one of:
- *SchemaOutOfDate*: the code was deployed without its migration. Run `cdp migrate`, then clear the task.
- *AuditChainBroken*: an audit row was edited, deleted or cut from the end. Do not clear the alert: run
  `cdp audit verify` to see the first bad row and escalate to the data-protection lead; the chain is
  evidence.
- a connection error: the warehouse is down or the `warehouse` connection is wrong.
- *AlertsNotWired* (task `check_alerts`): the `slack_alerts` connection is missing, names no webhook, or its
  webhook is unreachable or revoked, so this very alert may not arrive: the run shows red in the UI and the
  task log says what is wrong. Fix the connection (README, Connections), then clear the task;
  `python -m cdp.runtime.preflight alerts` checks it from a shell.

**Re-run / backfill.** Safe at any time; each run adds one check row. Past intervals are not back-filled
(`catchup=False`): a health check is about now.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from cdp.runtime import default_args, run_failure_notifier


@dag(
    schedule="17 * * * *",  # hourly, at 17 minutes past
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["ops"],
    default_args=default_args(retries=2),
    on_failure_callback=run_failure_notifier(),
    doc_md=__doc__,
)
def cdp_health() -> None:
    @task
    def check_warehouse(ti=None) -> dict[str, object]:
        from cdp.health import check_warehouse as run_check
        from cdp.runtime import actor_of, warehouse_url

        result = run_check(warehouse_url(), actor_of(ti), ti.run_id)
        return {
            "check_id": result.check_id,
            "schema_version": result.schema_version,
            "audit_rows": result.audit.rows_checked,
        }

    @task
    def check_alerts() -> str:
        """Fails when alerts would be lost: a missing or broken `slack_alerts` connection."""
        from cdp.runtime import SLACK_CONN_ID
        from cdp.runtime.alerts import check_alert_connection

        return check_alert_connection(SLACK_CONN_ID)

    check_warehouse()
    check_alerts()


cdp_health()
