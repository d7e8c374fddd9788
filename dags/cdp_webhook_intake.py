"""
# Webhook processing (`cdp_webhook_intake`)

**What it does.** The webhook intake (plugin `cdp_webhooks`, served by the Airflow API server under
`/cdp-webhooks/{typeform,zigpoll,registration}`) has already verified each request's signature and
timestamp and landed its payload in `raw.records` (stream `webhook`) before answering the sender. This DAG
feeds those landed payloads through the survey streams' own mappings into `core.survey_response` and
`core.consent` (one task per stream, the same sync engine and SQL as the 2-hourly `cdp_sync` polling, under
the stream key `<stream>_webhook` so the polling watermark never moves), marks them processed, and then
checks that no event has waited over an hour.

**When.** On the Asset event `warehouse.raw.webhooks` the intake emits after landing (coalesced per burst),
and every 30 minutes in any case, so an event whose Asset event was lost is still processed.

**Reads** `ops.webhook_event`, `raw.records`, `ops.webhook_undeliverable`; the Airflow connection `warehouse`.
**Writes** `core`, `raw` (the mapped record), `ops.quarantine` (records the mapping rejects, with the
reason), `ops.sync_run`, `ops.webhook_event.processed_at`, `ops.alert_state`, `audit`.

**An alert from it means** either a stream failed to map its events (read the task log: the events stay
pending and the next run tries again), or `check_backlog` found events pending for over an hour: their
stream has no sync spec yet (`cdp.webhooks.WEBHOOK_STREAM_KEYS` names the specs it expects) or
processing keeps failing. `webhook_undeliverable:<source>` (a data alert, sent once and once more when it
changes or clears) means signed deliveries were acknowledged but could not be landed as JSON (a NUL
character `\\u0000`, invalid JSON, another encoding): their bytes wait in `ops.webhook_undeliverable` for
an operator. Rejected requests are not alerts: they are counted in `ops.webhook_rejection_count` (per
source, reason and hour).

**Re-run.** Safe at any time: only pending events are read, the upserts are idempotent, and an event
mapped twice changes nothing.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from cdp.runtime import default_args, run_failure_notifier, warehouse_changes
from cdp.webhooks import WEBHOOK_ASSET_NAME, WEBHOOK_ASSET_URI, specs_with_webhooks

WEBHOOK_SPECS = specs_with_webhooks()


@dag(
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("*/30 * * * *", timezone="UTC"),  # every 30 minutes
        assets=[Asset(name=WEBHOOK_ASSET_NAME, uri=WEBHOOK_ASSET_URI)],
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["privacy"],
    default_args=default_args(retries=3),
    on_failure_callback=run_failure_notifier(),
    doc_md=__doc__,
)
def cdp_webhook_intake() -> None:
    @task(outlets=[warehouse_changes()])  # the stream's table, only when the run changed rows in it
    def process(stream_key: str, ti=None, outlet_events=None) -> dict[str, object]:
        from cdp.runtime import actor_of, warehouse_url
        from cdp.runtime.assets import changed, emit_changes
        from cdp.sync.specs import BY_KEY
        from cdp.webhooks.stream import process_pending

        spec = BY_KEY[stream_key]
        result = process_pending(warehouse_url(), spec, actor=actor_of(ti), run_id=ti.run_id).as_dict()
        if changed(result):
            emit_changes(
                outlet_events, [spec.entity], {"stream": stream_key, "rows_landed": result["rows_landed"]}
            )
        return result

    @task(trigger_rule="all_done")
    def check_backlog(ti=None) -> dict[str, int]:
        """Alert on undeliverable deliveries (a data alert, once), then fail on events waiting too long."""
        from cdp.runtime import actor_of, data_alert_sender, warehouse_url
        from cdp.webhooks.stream import alert_undeliverable, check_backlog

        url = warehouse_url()
        alert_undeliverable(url, run_id=ti.run_id, send=data_alert_sender(), actor=actor_of(ti))
        return check_backlog(url)

    process.expand(stream_key=[spec.key for spec in WEBHOOK_SPECS]) >> check_backlog()


cdp_webhook_intake()
