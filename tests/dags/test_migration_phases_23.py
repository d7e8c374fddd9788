"""End to end under Airflow, on sandbox data: the phase 2 DAG dry-runs, applies, and re-runs to no change;
the phase 3 DAG triggers every completion once, and again not at all."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from crm_world import eligible, sync_lms

from cdp.crm.client import SalesforceWriter
from cdp.crm.push import PUSH_PURPOSES, push_contacts
from cdp.warehouse import Actor
from cdp_sandbox.devserver import connection_env
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer


@pytest.fixture
def phase_env(monkeypatch: pytest.MonkeyPatch, warehouse_url: str) -> Iterator[SandboxServer]:
    with SandboxServer(World(seed=3, learners=150)) as sandbox:
        sync_lms(warehouse_url, sandbox)
        monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
        for source in ("salesforce", "certificates"):
            monkeypatch.setenv(
                *connection_env(source, sandbox.settings(source, max_attempts=2, retry_base_delay=0.01))
            )
        monkeypatch.setenv(
            "AIRFLOW_CONN_SLACK_ALERTS",
            json.dumps({"conn_type": "slackwebhook", "password": sandbox.slack_webhook_url}),
        )
        yield sandbox


def _one_name(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) FROM core.person WHERE family_name IS NULL AND person_id = ANY(%s::uuid[])",
            (sorted(eligible(url, PUSH_PURPOSES)),),
        ).fetchone()[0]


@pytest.mark.slow
def test_phase2_dag_dry_runs_first_then_applies_and_a_rerun_changes_nothing(
    load_dag, warehouse_url: str, phase_env: SandboxServer
) -> None:
    writes = phase_env.apis.salesforce_writes
    before = writes.snapshot()
    dag = load_dag("migration_phase2_lms_crm")

    dry = dag.test(logical_date=None)

    assert dry.state == "success"
    assert writes.snapshot() == before and writes.write_requests == 0
    applied = dag.test(run_conf={"mode": "apply"}, logical_date=None)

    assert applied.state == "success"
    expected = eligible(warehouse_url, PUSH_PURPOSES)
    pushed = writes.by_external_id("Contact", "CDP_Person_Id__c")
    assert len(pushed) == len(expected) - _one_name(warehouse_url) > 20
    alerts = [m["payload"]["text"] for m in phase_env.slack_messages]
    assert len(alerts) == 1 and "refused by the CRM" in alerts[0] and "REQUIRED_FIELD_MISSING" in alerts[0]

    after_apply = writes.snapshot()
    rerun = dag.test(logical_date=None)  # auto, now that a run was applied

    assert rerun.state == "success"
    assert writes.snapshot() == after_apply
    assert len(phase_env.slack_messages) == 1  # the same refusals are not announced twice
    with psycopg.connect(warehouse_url) as conn:
        runs = conn.execute(
            "SELECT dry_run, creates, sent, reconciled FROM ops.crm_push_run ORDER BY started_at"
        ).fetchall()
    assert [r[0] for r in runs] == [True, False, False]
    assert runs[1][3] is True and runs[2][1:] == (_one_name(warehouse_url), _one_name(warehouse_url), True)


@pytest.mark.slow
def test_phase3_dag_triggers_every_completion_once(
    load_dag, warehouse_url: str, phase_env: SandboxServer, tmp_path: Path
) -> None:
    writer = SalesforceWriter(phase_env.settings("salesforce"))
    push_contacts(
        warehouse_url, writer, run_id="push-1", actor=Actor("pytest"), mode="apply", report_dir=tmp_path
    )
    writer.close()
    with psycopg.connect(warehouse_url) as conn:
        completions = conn.execute("SELECT count(*) FROM core.course_completion").fetchone()[0]
    dag = load_dag("migration_phase3_completion_triggers")

    first = dag.test(logical_date=None)

    assert first.state == "success"
    service = phase_env.apis.certificate_service
    assert len(service.requests) == completions > 100
    members = len(phase_env.apis.salesforce_writes.records["CampaignMember"])
    assert members > 20
    with psycopg.connect(warehouse_url) as conn:
        ledger = conn.execute(
            "SELECT kind, status, count(*) FROM ops.completion_trigger GROUP BY 1, 2 ORDER BY 1"
        ).fetchall()
        events = conn.execute(
            "SELECT dag_id, run_id FROM audit.audit_events WHERE action = 'completion_triggers'"
        ).fetchall()
    assert ledger == [("certificate", "sent", completions), ("crm_campaign", "sent", members)]
    assert events == [("migration_phase3_completion_triggers", first.run_id)]

    posts = service.posts
    second = dag.test(logical_date=None)

    assert second.state == "success"
    assert service.posts == posts and len(service.requests) == completions
    assert len(phase_env.apis.salesforce_writes.records["CampaignMember"]) == members


@pytest.mark.parametrize("run_type", ["scheduled", "asset_triggered", "manual"])
def test_phase3_runs_the_scheduler_starts_wait_for_the_first_complete_sync(
    load_dag, warehouse_url: str, phase_env: SandboxServer, run_type: str
) -> None:
    """The LMS streams have landed, the rest of the first sync has not: the completions' Asset event and the
    hourly cron time can both come now, and such a run does nothing; the first complete sync starts it. A
    person's manual run goes ahead."""
    from types import SimpleNamespace

    from airflow.sdk.exceptions import AirflowSkipException

    from cdp.runtime.assets import WAREHOUSE_READY_URI, warehouse_asset

    dag = load_dag("migration_phase3_completion_triggers")
    condition = dag.timetable.asset_condition
    # What Airflow's task runner calls before the task itself (the `pre_execute` of the DAG's default_args).
    before_the_task = dag.get_task("trigger_completions")._pre_execute_hook
    context = {"dag_run": SimpleNamespace(run_type=run_type)}

    assert type(condition).__name__ == "AssetAny"
    assert {asset.uri for asset in condition.objects} == {
        WAREHOUSE_READY_URI, warehouse_asset("core.course_completion").uri,
    }  # fmt: skip
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("SELECT count(*) FROM core.course_completion").fetchone()[0] > 100
    if run_type == "manual":
        before_the_task(context)
    else:
        with pytest.raises(AirflowSkipException, match="before the first complete sync"):
            before_the_task(context)
