"""Alerts people read: one Slack message per failed run, saying what failed and where to look.

Airflow calls a DAG's ``on_failure_callback`` once per run, after the failing task's last retry, with the
task instance that failed it but without its exception. So each task keeps the last lines of its error
where the DAG callback can read them: ``record_error_tail`` (every task's ``on_failure_callback``, which
Airflow calls only after the final try, never on a retry) pushes them as an XCom; the run's notifier reads
that XCom back and sends the one message, naming DAG, task, run, error and the log link.

Data alerts (count diffs, reconciliation, quarantine) are built in ``cdp.quality.data_alerts`` and sent
through ``slack_sender``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

log = logging.getLogger(__name__)

ERROR_LINES = 5
ERROR_TAIL_KEY = "cdp_error_tail"


def error_tail(error: object) -> str:
    return "\n".join(str(error).strip().splitlines()[-ERROR_LINES:])


def failure_text(context: Mapping[str, Any], error: str | None = None) -> str:
    """The message for a failed run, built from the callback context and the failed task's error tail."""
    dag_run = context.get("dag_run")
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(dag_run, "dag_id", None) or getattr(ti, "dag_id", None) or "unknown DAG"
    run_id = getattr(dag_run, "run_id", None) or context.get("run_id") or "unknown run"
    task_id = getattr(ti, "task_id", None)
    map_index = getattr(ti, "map_index", -1)
    if error is None:
        error = context.get("exception") or context.get("reason") or "no error text in the callback context"
    lines = [f":red_circle: *{dag_id}* failed", f"run: `{run_id}`"]
    if task_id:
        mapped = f" [{map_index}]" if isinstance(map_index, int) and map_index >= 0 else ""
        lines.append(f"task: `{task_id}`{mapped}")
    lines.append(f"error:\n```{error_tail(error)}```")
    log_url = getattr(ti, "log_url", None)
    if log_url:
        lines.append(f"log: {log_url}")
    return "\n".join(lines)


def record_error_tail(context: Mapping[str, Any]) -> None:
    """A task's failure callback (final try only): keep the error's last lines for the run's alert."""
    ti = context.get("ti") or context.get("task_instance")
    error = context.get("exception")
    if ti is None or error is None:
        return
    try:
        ti.xcom_push(key=ERROR_TAIL_KEY, value=error_tail(f"{type(error).__name__}: {error}"))
    except Exception:  # an alert must never fail because its detail could not be kept
        log.exception("could not keep the error tail of %s", getattr(ti, "task_id", "?"))


def _stored_error_tail(ti: Any) -> str | None:
    if ti is None:
        return None
    try:
        return ti.xcom_pull(task_ids=ti.task_id, key=ERROR_TAIL_KEY, map_indexes=ti.map_index)
    except Exception:
        pass
    # Callbacks run in-process by the scheduler (and by dag.test()) have no task-supervisor channel for
    # XCom; there the metadata database is at hand.
    try:
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            row = session.scalars(
                XComModel.get_many(
                    run_id=ti.run_id,
                    key=ERROR_TAIL_KEY,
                    dag_ids=ti.dag_id,
                    task_ids=ti.task_id,
                    map_indexes=ti.map_index,
                    limit=1,
                )  # fmt: skip
            ).first()
            return None if row is None else XComModel.deserialize_value(row)
    except Exception:
        log.exception("could not read the error tail of %s", getattr(ti, "task_id", "?"))
        return None


class RunFailureNotifier(SlackWebhookNotifier):
    """A Slack webhook notifier whose text is built from the failure context when it fires."""

    def __init__(self, *, slack_webhook_conn_id: str, **kwargs: Any) -> None:
        super().__init__(slack_webhook_conn_id=slack_webhook_conn_id, text="", **kwargs)

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Nothing to render: the text is built from the context in ``notify``. (A callback run by the
        scheduler gets a serialised DAG, which has no template environment to render with.)"""

    def notify(self, context: Any) -> None:
        ti = context.get("ti") or context.get("task_instance")
        error = None if context.get("exception") else _stored_error_tail(ti)
        self.text = failure_text(context, error)
        super().notify(context)


def slack_sender(conn_id: str) -> Callable[[str], None]:
    """Send a text to the Slack webhook connection ``conn_id`` (data alerts)."""
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

    def send(text: str) -> None:
        SlackWebhookHook(slack_webhook_conn_id=conn_id).send(text=text)

    return send
