"""Alerts people read: one Slack message per failed run, saying what failed and where to look."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

ERROR_LINES = 5


def failure_text(context: Mapping[str, Any]) -> str:
    """The message for a failed run, built only from the callback context (no database look-ups)."""
    dag_run = context.get("dag_run")
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(dag_run, "dag_id", None) or getattr(ti, "dag_id", None) or "unknown DAG"
    run_id = getattr(dag_run, "run_id", None) or context.get("run_id") or "unknown run"
    task_id = getattr(ti, "task_id", None)
    error = context.get("exception") or context.get("reason") or "no error text in the callback context"
    error_tail = "\n".join(str(error).strip().splitlines()[-ERROR_LINES:])
    lines = [f":red_circle: *{dag_id}* failed", f"run: `{run_id}`"]
    if task_id:
        lines.append(f"task: `{task_id}`")
    lines.append(f"error:\n```{error_tail}```")
    log_url = getattr(ti, "log_url", None)
    if log_url:
        lines.append(f"log: {log_url}")
    return "\n".join(lines)


class RunFailureNotifier(SlackWebhookNotifier):
    """A Slack webhook notifier whose text is built from the failure context when it fires."""

    def __init__(self, *, slack_webhook_conn_id: str, **kwargs: Any) -> None:
        super().__init__(slack_webhook_conn_id=slack_webhook_conn_id, text="", **kwargs)

    def notify(self, context: Any) -> None:
        self.text = failure_text(context)
        super().notify(context)
