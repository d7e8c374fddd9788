"""Alerts as people receive them: what the sandbox's Slack webhook receiver (a real HTTP server) got.

A failed run sends exactly one message after its final retry, naming DAG, task, run, the error's last lines
and the log link; the month's grouped data alert is not repeated when nothing changed."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import quote

import psycopg
import pytest
from support import free_port

from cdp.runtime import SLACK_CONN_ID, SYNC_DEADLINE, preflight
from cdp.runtime.alerts import AlertsNotWired, check_alert_connection, failure_text
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer


@pytest.fixture
def world() -> World:
    """The shared ``sandbox`` fixture (tests/fixtures/slack_sandbox.py) serves this small world."""
    return World(seed=3, learners=50)


def _with_quick_retries(dag, retries: int):
    for task in dag.tasks:
        task.retries = retries
        task.retry_delay = timedelta(seconds=1)
        task.max_retry_delay = timedelta(seconds=2)
    return dag


def _unreconciled_month(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO core.ledger_posting (financial_transaction_id, posting_date, account, amount_minor,"
            " currency, reference, source, source_record_id)"
            " VALUES ('FT-LOST', '2024-03-05', '4000 Contributions', 7000, 'USD', 'ch_lost', 'ledger', 'ch_lost')"
        )


def _failure_messages(sandbox: SandboxServer) -> list[str]:
    return [
        m["payload"]["text"]
        for m in sandbox.slack_messages
        if m["payload"]["text"].startswith(":red_circle:")
    ]


def _data_messages(sandbox: SandboxServer) -> list[str]:
    return [
        m["payload"]["text"] for m in sandbox.slack_messages if m["payload"]["text"].startswith(":warning:")
    ]


@pytest.mark.slow
def test_a_failed_run_alerts_once_after_its_last_retry(
    load_dag, warehouse_url: str, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
    monkeypatch.setenv("CDP_HOME", str(tmp_path))
    _unreconciled_month(warehouse_url)
    dag = _with_quick_retries(load_dag("cdp_reconcile"), retries=2)

    dag_run = dag.test(run_conf={"month": "2024-03"})

    assert dag_run.state == "failed"
    failed = dag_run.get_task_instance("require_reconciled")
    assert (failed.state, failed.try_number) == ("failed", 3)  # three tries, one message
    report = tmp_path / "reports" / "finance" / "reconciliation_2024-03_run1.html"
    assert report.exists()
    log_url = (
        f"http://localhost:8080/dags/cdp_reconcile/runs/{quote(dag_run.run_id, safe='')}"
        "/tasks/require_reconciled?try_number=3"
    )
    assert _failure_messages(sandbox) == [
        ":red_circle: *cdp_reconcile* failed\n"
        f"run: `{dag_run.run_id}`\n"
        "task: `require_reconciled`\n"
        "error:\n"
        "```RuntimeError: 2024-03 did not reconcile: 1 unexplained differences "
        f"(reconciliation run 1, report {report})```\n"
        f"log: {log_url}"
    ]
    assert _data_messages(sandbox) == [
        f":warning: *Reconciliation* — run `{dag_run.run_id}`\n"
        "• *2024-03* does not reconcile: 1 unexplained differences (in_ledger_not_warehouse USD: 1 rows, "
        f"-70.00 USD). Report: {report}"
    ]

    # The next run finds the same difference: a new failed run alerts again, the data alert is not repeated.
    second = _with_quick_retries(load_dag("cdp_reconcile"), retries=0).test(run_conf={"month": "2024-03"})

    assert second.state == "failed"
    assert len(_failure_messages(sandbox)) == 2 and second.run_id in _failure_messages(sandbox)[1]
    assert len(_data_messages(sandbox)) == 1


@pytest.mark.slow
def test_a_reconciled_month_sends_nothing(
    load_dag, warehouse_url: str, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
    monkeypatch.setenv("CDP_HOME", str(tmp_path))

    dag_run = load_dag("cdp_reconcile").test(run_conf={"month": "2024-03"}, logical_date=None)

    assert dag_run.state == "success"
    assert sandbox.slack_messages == []


def test_failure_text_keeps_the_last_lines_of_the_error() -> None:
    class TI:
        dag_id, task_id, map_index = "cdp_sync", "sync_activity", 2
        log_url = "http://airflow/log"

    text = failure_text({"ti": TI(), "run_id": "r1"}, "\n".join(f"line {i}" for i in range(1, 9)))

    assert text == (
        ":red_circle: *cdp_sync* failed\nrun: `r1`\ntask: `sync_activity` [2]\n"
        "error:\n```line 4\nline 5\nline 6\nline 7\nline 8```\nlog: http://airflow/log"
    )


def test_the_sync_has_a_deadline_alert_for_its_window() -> None:
    import runpy

    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
    from airflow.sdk.definitions.deadline import AsyncCallback, DeadlineAlert, DeadlineReference

    from cdp.paths import PROJECT_ROOT

    dag = runpy.run_path(str(PROJECT_ROOT / "dags" / "cdp_sync.py"))["cdp_sync"]()

    (alert,) = dag.deadline
    assert isinstance(alert, DeadlineAlert)
    assert isinstance(alert.reference, type(DeadlineReference.DAGRUN_QUEUED_AT))
    assert alert.interval == SYNC_DEADLINE == timedelta(hours=2)
    assert isinstance(alert.callback, AsyncCallback)
    assert alert.callback.path.endswith(SlackWebhookNotifier.__name__)
    assert alert.callback.kwargs["slack_webhook_conn_id"] == SLACK_CONN_ID
    assert "{{ dag_run.dag_run_id }}` has not finished within 2 hours" in alert.callback.kwargs["text"]


def test_the_alert_probe_accepts_a_live_webhook_without_posting_a_message(sandbox: SandboxServer) -> None:
    assert check_alert_connection(SLACK_CONN_ID) == (
        f"alerts go to the `{SLACK_CONN_ID}` webhook at {sandbox.base_url}, which answers"
    )
    assert sandbox.slack_messages == []


@pytest.mark.parametrize("broken", ["missing", "no webhook", "refused", "unreachable"])
def test_a_missing_or_broken_alert_connection_is_caught(
    broken: str, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection = {
        "missing": None,
        "no webhook": {"conn_type": "slackwebhook"},
        # A webhook the receiver does not serve (Slack: 404 no_service for a revoked one).
        "refused": {"conn_type": "slackwebhook", "password": f"{sandbox.base_url}/hooks/revoked"},
        "unreachable": {
            "conn_type": "slackwebhook",
            "password": f"http://127.0.0.1:{free_port()}/services/T/B/x",
        },
    }[broken]
    if connection is None:
        monkeypatch.delenv("AIRFLOW_CONN_SLACK_ALERTS")
    else:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", json.dumps(connection))

    with pytest.raises(AlertsNotWired, match="alerts would be lost") as caught:
        check_alert_connection(SLACK_CONN_ID, timeout=2)

    assert "sandboxwebhooksecret" not in str(caught.value)  # the webhook's secret path is never printed
    assert sandbox.slack_messages == []


def test_the_preflight_fails_loudly_without_the_alert_connection(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert preflight.main(["alerts"]) == 0
    assert capsys.readouterr().out.startswith("ok   alerts: alerts go to the `slack_alerts` webhook")

    monkeypatch.delenv("AIRFLOW_CONN_SLACK_ALERTS")
    assert preflight.main(["alerts"]) == 1
    assert capsys.readouterr().err.startswith("FAIL alerts: AlertsNotWired: alerts would be lost:")
    assert preflight.main(["nonsense"]) == 2


def test_the_preflight_checks_the_warehouse_schema(
    warehouse_url: str,
    empty_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
    assert preflight.main(["warehouse"]) == 0

    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", empty_database_url)
    assert preflight.main(["warehouse"]) == 1
    assert "run `cdp migrate`" in capsys.readouterr().err
