"""Alerts people read: one Slack message per failed run, saying what failed and where to look.

Airflow calls a DAG's ``on_failure_callback`` once per run, after the failing task's last retry, with the
task instance that failed it but without its exception. So each task keeps the last lines of its error
where the DAG callback can read them: ``record_error_tail`` (every task's ``on_failure_callback``, which
Airflow calls only after the final try, never on a retry) pushes them as an XCom; the run's notifier reads
that XCom back and sends the one message, naming DAG, task, run, error and the log link.

Data alerts (count diffs, reconciliation, quarantine) are built in ``cdp.quality.data_alerts`` and sent
through ``slack_sender``.

An alert that cannot be sent is never just one line in a log: ``check_alert_connection`` probes the
``slack_alerts`` connection without posting anything, and both the preflight (``python -m
cdp.runtime.preflight``, run by docker-compose's airflow-init) and the hourly ``cdp_health`` DAG fail on a
missing or broken connection; a notifier that fails logs the whole undelivered message.
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
        try:
            super().notify(context)
        except Exception as failure:
            # Airflow logs a failed notifier in one line; the message itself must not be lost with it.
            log.error(
                "ALERT NOT DELIVERED through the %r connection (%s: %s); `cdp_health` fails until it is fixed."
                " The alert was:\n%s",
                self.slack_webhook_conn_id, type(failure).__name__, failure, self.text,
            )  # fmt: skip
            raise


def slack_sender(conn_id: str) -> Callable[[str], None]:
    """Send a text to the Slack webhook connection ``conn_id`` (data alerts)."""
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

    def send(text: str) -> None:
        SlackWebhookHook(slack_webhook_conn_id=conn_id).send(text=text)

    return send


class AlertsNotWired(RuntimeError):
    """The alert connection is missing or broken: every failure and data alert would be lost."""


# What a live Slack incoming webhook answers to a message with no text (HTTP 400), so probing posts nothing.
# A dead one answers 403 invalid_token / no_team, 404 no_service, 410 channel_is_archived, or nothing at all.
LIVE_WEBHOOK_ANSWERS = frozenset({"no_text", "invalid_payload", "missing_text_or_fallback_or_attachments"})


def check_alert_connection(conn_id: str, *, timeout: float = 10.0) -> str:
    """Probe the Slack webhook connection ``conn_id`` without posting a message; raise ``AlertsNotWired``
    when it is missing, names no webhook, or the webhook does not answer as a live one. Returns a line that
    says where alerts go (scheme and host only: the webhook's path is its secret)."""
    from urllib.parse import urlsplit

    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    fix = (
        f"define the `{conn_id}` connection (a Slack incoming webhook: conn_type `slackwebhook`, the webhook URL"
        " as password; README, Connections)"
    )
    try:
        client = SlackWebhookHook(slack_webhook_conn_id=conn_id, timeout=int(timeout)).client
    except AirflowNotFoundException as error:
        raise AlertsNotWired(f"alerts would be lost: {error}; {fix}") from error
    where = "{0.scheme}://{0.netloc}".format(urlsplit(client.url))
    try:
        response = client.send_dict({})
    except Exception as error:
        raise AlertsNotWired(
            f"alerts would be lost: the `{conn_id}` webhook at {where} cannot be reached"
            f" ({type(error).__name__}: {error}); check the URL and the network path to it"
        ) from error
    answer = str(response.body or "").strip()
    if response.status_code == 200 or (response.status_code == 400 and answer in LIVE_WEBHOOK_ANSWERS):
        return f"alerts go to the `{conn_id}` webhook at {where}, which answers"
    raise AlertsNotWired(
        f"alerts would be lost: the `{conn_id}` webhook at {where} answered HTTP {response.status_code}"
        f" {answer[:80]!r} (a revoked or mistyped webhook); {fix}"
    )
