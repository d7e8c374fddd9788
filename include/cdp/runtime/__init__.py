"""The thin layer between Airflow and the domain package.

DAG files get their shared defaults here, and tasks turn Airflow's connections and context into the plain
settings the domain code takes (a warehouse URL, an ``Actor``). Nothing here runs at DAG parse time: the
connection is looked up only when a task calls ``warehouse_url()``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from cdp.runtime.alerts import RunFailureNotifier, record_error_tail
from cdp.runtime.anchor import anchor_audit_head

# The DAG files' Asset helpers (see cdp.runtime.assets), re-exported.
from cdp.runtime.assets import after_first_sync as after_first_sync
from cdp.runtime.assets import after_first_sync_and_on_changes as after_first_sync_and_on_changes
from cdp.runtime.assets import month_param as month_param
from cdp.runtime.assets import month_to_write as month_to_write
from cdp.runtime.assets import never_at_switch_on as never_at_switch_on
from cdp.runtime.assets import reconciled_month as reconciled_month
from cdp.runtime.assets import reconciliation_asset as reconciliation_asset
from cdp.runtime.assets import skip_before_first_complete_sync as skip_before_first_complete_sync
from cdp.runtime.assets import skip_before_first_complete_sync_hook
from cdp.runtime.assets import warehouse_asset as warehouse_asset
from cdp.runtime.assets import warehouse_changes as warehouse_changes
from cdp.runtime.assets import warehouse_ready as warehouse_ready
from cdp.runtime.context import WAREHOUSE_CONN_ID as WAREHOUSE_CONN_ID
from cdp.runtime.context import actor_of, warehouse_url
from cdp.sources import registry
from cdp.sources.base import SourceSettings
from cdp.sources.spec import DEFAULT_POOL as DEFAULT_VENDOR_POOL
from cdp.sources.spec import VendorPool
from cdp.warehouse import PIPELINE as PIPELINE
from cdp.warehouse import Actor as Actor
from cdp.warehouse import normalise_url as normalise_url
from cdp.warehouse import resolve_url as resolve_url

OWNER = "data-platform"
SLACK_CONN_ID = "slack_alerts"

# Tags let the UI's DAG list be filtered by family (it does not group by them); the DAG integrity test
# allows only these.
ALLOWED_TAGS = frozenset(
    {"sync", "quality", "finance", "privacy", "migration", "identity", "ops", "referrals", "surveys"}
)


#: Names the Celery queue of the heavy tasks, read where a DAG file is parsed (dag-processor and workers alike).
HEAVY_QUEUE_ENV = "CDP_HEAVY_QUEUE"


def heavy_task_args() -> dict[str, str]:
    """Task arguments for the work that needs a big worker: identity scoring and merging (``cdp_dedupe``) and
    the month's reconciliation (``cdp_reconcile``).

    With ``CDP_HEAVY_QUEUE`` set (docker-compose sets ``heavy`` and runs ``airflow-worker-heavy`` for it) they
    go to that queue, so a few large workers take them and the many small ones keep syncing; unset, they stay
    on Airflow's default queue (the LocalExecutor, or a cluster whose workers all serve one queue). A queue
    no worker serves leaves its tasks queued for ever: set it only where such a worker runs."""
    queue = os.environ.get(HEAVY_QUEUE_ENV, "").strip()
    return {"queue": queue} if queue else {}


def default_args(retries: int = 3, *, after_first_sync: bool = False) -> dict[str, Any]:
    """Retries with exponential backoff for every task; alerts are per run (see ``run_failure_notifier``).

    ``after_first_sync``: for a DAG scheduled with ``after_first_sync`` (or ``after_first_sync_and_on_changes``):
    each task of a scheduled or asset-triggered run skips while no sync has landed every stream yet (its cron
    time or a table event came during the first sync); the first complete sync's ``warehouse.ready`` starts it.
    """
    extra: dict[str, Any] = {"pre_execute": skip_before_first_complete_sync_hook} if after_first_sync else {}
    return {
        **extra,
        "owner": OWNER,
        "retries": retries,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=20),
        # Called after the final try only: keeps the error's last lines for the run's one alert.
        "on_failure_callback": [record_error_tail, anchor_audit_head],
        # The audit head goes to the anchor file after every task that moved it (issue 15, item 10).
        "on_success_callback": anchor_audit_head,
    }


def run_failure_notifier() -> RunFailureNotifier:
    """One Slack message per failed DAG run, sent after the last retry of the task that failed it."""
    return RunFailureNotifier(slack_webhook_conn_id=SLACK_CONN_ID)


def data_alert_sender():
    """Where grouped data alerts go: the same Slack connection as failure alerts."""
    from cdp.runtime.alerts import slack_sender

    return slack_sender(SLACK_CONN_ID)


SYNC_DEADLINE = timedelta(hours=2)


def sync_deadline() -> Any:
    """A DeadlineAlert: the 2-hourly sync run has not finished within its 2-hour window after being queued."""
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
    from airflow.sdk.definitions.deadline import AsyncCallback, DeadlineAlert, DeadlineReference

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=SYNC_DEADLINE,
        # The scheduler hands the callback the run as the REST API's DAGRunResponse: its id is `dag_run_id`
        # (`dag_run.run_id` renders empty; seen with a real scheduler in tests/dags/test_backfill_airflow.py).
        callback=AsyncCallback(
            SlackWebhookNotifier,
            kwargs={
                "slack_webhook_conn_id": SLACK_CONN_ID,
                "text": ":hourglass: *{{ dag_run.dag_id }}* run `{{ dag_run.dag_run_id }}` has not finished "
                "within 2 hours of being queued (deadline {{ deadline.deadline_time }}): the next run "
                "will queue behind it. Check the run's running tasks in the Airflow UI.",
            },
        ),
    )


def sync_stream_task(
    stream_key: str,
    ti: Any = None,
    data_interval_start: Any = None,
    data_interval_end: Any = None,
    outlet_events: Any = None,
) -> dict[str, object]:
    """The body of every stream-sync task (``cdp_sync``, ``migration_phase4_platforms``), context values as
    TaskFlow hands them in: one stream read over the run's data interval (up to now for a run without one:
    triggered from the CLI or the UI) from its source's connection, landed by the sync engine. The task's
    ``warehouse_changes()`` outlet gets an event for the stream's table only when the run changed rows."""
    import pendulum

    from cdp.runtime.assets import changed, emit_changes
    from cdp.sources import registry
    from cdp.sync.engine import sync_stream
    from cdp.sync.specs import BY_KEY

    spec = BY_KEY[stream_key]
    result = sync_stream(
        warehouse_url(),
        registry.stream(spec.source, spec.stream, source_settings(spec.source)),
        spec,
        actor=actor_of(ti),
        run_id=ti.run_id,
        interval_start=data_interval_start,
        interval_end=data_interval_end or pendulum.now("UTC"),
    ).as_dict()
    if changed(result):
        emit_changes(
            outlet_events, [spec.entity], {"stream": stream_key, "rows_landed": result["rows_landed"]}
        )
    return result


def check_sources_task() -> dict[str, int]:
    """The body of ``cdp_sync``'s ``check_sources`` task: every polled source's setup check (``cdp sources
    check``) with its Airflow connection. The table goes to the task's log; something missing on a vendor's
    side fails the task at once (no retry: an admin has to act), a warning (e.g. a vendor without a check)
    only shows in the log. The stream tasks run either way: one vendor's missing field must not stop the
    others, and its rejected records wait in the quarantine with their reason."""
    import logging

    from airflow.sdk.exceptions import AirflowFailException

    from cdp.sources.setup_check import run_checks

    def configured(conn_id: str) -> SourceSettings | None:
        try:
            return source_settings(conn_id)
        except Exception as error:  # noqa: BLE001 - Airflow's "not found" differs by version; any miss is "not configured"
            logging.getLogger(__name__).info("connection %s: %s", conn_id, type(error).__name__)
            return None

    report = run_checks(configured, [source for source in registry.SOURCES if source.scheduled])
    log = logging.getLogger(__name__)
    log.info("cdp sources check:\n%s\n%s", report.table(), report.summary())
    if not report.ok:
        raise AirflowFailException(
            f"the vendor side lacks {len(report.missing)} thing(s) the sync needs; see the table above "
            f"(or run `cdp sources check`): {report.summary()}"
        )
    return {"missing": 0, "warnings": len(report.findings)}


def source_settings(source: str) -> SourceSettings:
    """A source's Airflow connection (conn id = the source's name, e.g. ``moodle``) as plain settings.

    ``host`` holds the API's base URL (``https://lms.example.org`` or, with a scheme missing, built from
    host/port/schema), ``password`` the token or key, ``extra`` the source-specific options.
    """
    from airflow.sdk import BaseHook

    connection = BaseHook.get_connection(source)
    host = connection.host or ""
    if "://" not in host and host:
        port = f":{connection.port}" if connection.port else ""
        host = f"https://{host}{port}"
    return SourceSettings(
        base_url=host.rstrip("/"), credential=connection.password or "", extra=connection.extra_dejson
    )


# --- Pools: one Airflow pool per vendor API budget. Every task that calls a vendor's API runs in that
# vendor's pool, so its slots cap how many of that vendor's calls run at once across every DAG (a mapped
# task shares one pool over all its map indexes: Airflow sets `pool` per task, not per map index, which is
# why cdp_sync has one mapped task per source). Created by docker-compose's airflow-init, by `make run`
# (`cdp_sandbox.devserver.create_pools`) and by the test clusters; a task whose pool does not exist stays queued.
DEFAULT_POOL = DEFAULT_VENDOR_POOL.name  # Airflow's own; for work that calls no vendor API

# Each source declares its pool in its folder (cdp/sources/<vendor>/specs.py); the registry collects them.
POOLS: tuple[VendorPool, ...] = registry.vendor_pools()
SOURCE_POOLS: dict[str, str] = registry.source_pools()


def source_pool(source: str) -> str:
    """The pool of the tasks that call ``source``'s API (a KeyError names a source added without one)."""
    return SOURCE_POOLS[source]
