"""End to end: `cdp_sync` under Airflow, against the sandbox, lands what the generator says exists."""

from __future__ import annotations

import psycopg
import pytest

from cdp.runtime import source_pool
from cdp.sync.specs import SCHEDULED_SPECS, SPECS, VOLUNTEER_SPECS
from cdp_sandbox import volunteers
from cdp_sandbox.devserver import connection_env
from cdp_sandbox.faults import Fault
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer


@pytest.fixture
def sandbox_connections(monkeypatch: pytest.MonkeyPatch, warehouse_url: str, tmp_path):
    world = World(seed=5, learners=200)
    with SandboxServer(world, ledger_folder=tmp_path / "ledger-drop") as sandbox:
        monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
        for source in {spec.source for spec in SCHEDULED_SPECS}:
            monkeypatch.setenv(
                *connection_env(source, sandbox.settings(source, max_attempts=2, retry_base_delay=0.01))
            )
        yield world, sandbox


@pytest.mark.slow
def test_sync_dag_lands_every_stream_and_matches_the_truth(
    load_dag, warehouse_url: str, sandbox_connections
) -> None:
    world, _ = sandbox_connections

    dag_run = load_dag("cdp_sync").test()

    assert dag_run.state == "success"
    with psycopg.connect(warehouse_url) as conn:
        runs = dict(conn.execute("SELECT source || '.' || stream, rows_read FROM ops.sync_run").fetchall())
        people = conn.execute(
            "SELECT count(*) FROM core.person_source_id WHERE source = 'moodle.user'"
        ).fetchone()[0]
        ledger_lines = conn.execute("SELECT count(*) FROM core.ledger_posting").fetchone()[0]
        households = conn.execute(
            "SELECT count(*) FROM core.household WHERE source = 'salesforce'"
        ).fetchone()[0]
        landed_volunteers = dict(
            zip(
                ("users", "responses", "hours"),
                conn.execute(
                    "SELECT (SELECT count(*) FROM core.volunteer), (SELECT count(*) FROM core.volunteer_shift),"
                    " (SELECT count(*) FROM core.volunteer_hours)"
                ).fetchone(),
                strict=True,
            )
        )
        quarantined_volunteers = dict(
            conn.execute(
                "SELECT stream, count(DISTINCT source_record_id) FROM ops.quarantine"
                " WHERE source = 'galaxy' AND resolved_at IS NULL GROUP BY stream"
            ).fetchall()
        )
        dag_events = conn.execute(
            "SELECT count(*) FROM audit.audit_events WHERE action = 'import' AND dag_id = 'cdp_sync' AND run_id = %s",
            (dag_run.run_id,),
        ).fetchone()[0]
    volunteer_data = volunteers.of(world)
    assert runs == {
        **{spec.key: world.truth.expected_count(spec.source, spec.stream) for spec in SPECS},
        **{f"galaxy.{stream}": len(table) for stream, table in volunteer_data.tables.items()},
    }
    assert len(runs) == len(SCHEDULED_SPECS)
    assert people == world.truth.expected_count("moodle", "users") - len(
        world.truth.malformed("moodle", "users")
    )
    assert dag_events == len(SCHEDULED_SPECS)
    # Volunteers, their shifts and hours land (or wait in the quarantine with a reason: none is lost).
    assert landed_volunteers["users"] == len(volunteer_data.users) - len(volunteer_data.malformed("users"))
    for stream, table in volunteer_data.tables.items():
        assert landed_volunteers[stream] > 0, stream
        assert landed_volunteers[stream] + quarantined_volunteers.get(stream, 0) == len(table), stream
    assert ledger_lines == world.truth.expected_count("ledger", "postings") - len(
        world.truth.malformed("ledger", "postings")
    )
    household_accounts = [
        a for a in world.records("salesforce", "Account") if a["npe01__SYSTEM_AccountType__c"] and a["Name"]
    ]
    assert households == len(household_accounts) > 0


@pytest.mark.slow
def test_a_source_that_stays_down_fails_its_own_task_and_the_rest_land(
    load_dag, warehouse_url: str, sandbox_connections
) -> None:
    _, sandbox = sandbox_connections
    sandbox.faults.add(Fault("server_error", "salesforce"))

    dag_run = load_dag("cdp_sync").test()

    assert dag_run.state == "failed"
    with psycopg.connect(warehouse_url) as conn:
        landed = {row[0] for row in conn.execute("SELECT DISTINCT source || '.' || stream FROM ops.sync_run")}
    assert landed == {spec.key for spec in SCHEDULED_SPECS if spec.source != "salesforce"}


def test_each_sources_streams_run_in_that_sources_own_mapped_task_and_pool(load_dag) -> None:
    dag = load_dag("cdp_sync")
    syncs = [task for task in dag.tasks if task.task_id.startswith("sync_")]
    streams_by_task = {task.task_id: task.op_kwargs_expand_input.value["stream_key"] for task in syncs}

    assert sorted(key for keys in streams_by_task.values() for key in keys) == sorted(
        spec.key for spec in SCHEDULED_SPECS
    )
    for task in syncs:
        sources = {key.split(".")[0] for key in streams_by_task[task.task_id]}
        assert len(sources) == 1, f"{task.task_id} mixes sources {sources}: they would share one pool"
        assert task.pool == source_pool(sources.pop())
    assert {task.pool for task in syncs} >= {
        "moodle_api",
        "salesforce_api",
        "stripe_api",
        "survey_api",
        "galaxy_api",
    }
    # Activity waits for every people/reference task, and runs even when one of them failed.
    first = {task.task_id for task in syncs if task.task_id.endswith("_people_and_reference")}
    # People sources one after another in a fixed order (the order shapes who is joined to whom), volunteers
    # last (they resolve to the LMS's and CRM's people).
    moodle, salesforce, galaxy_people = (
        dag.get_task(f"sync_{source}_people_and_reference") for source in ("moodle", "salesforce", "galaxy")
    )
    assert moodle.upstream_task_ids == set()
    assert salesforce.upstream_task_ids == {moodle.task_id}
    assert galaxy_people.upstream_task_ids == {salesforce.task_id}
    assert galaxy_people.trigger_rule == "all_done"
    # Activity pointing to another source's activity waits for it: Opportunities to Stripe's donations,
    # ReferralHero's people resolve after Stripe's payers, Zendesk tickets to both and to the referrals.
    waits_for = {"salesforce": {"stripe"}, "referralhero": {"stripe"}, "zendesk": {"referralhero"}}
    for task in syncs:
        if task.task_id.endswith("_activity"):
            source = task.task_id.removeprefix("sync_").removesuffix("_activity")
            extra = {f"sync_{other}_activity" for other in waits_for.get(source, ())}
            assert task.upstream_task_ids == first | extra, task.task_id
            assert task.trigger_rule == "all_done"
    # A task's streams sync one at a time, lowest map index first, in SCHEDULED_SPECS' order: a refund after
    # its charge, a soft credit after its opportunity, a completion after its enrollment.
    order = [spec.key for spec in SCHEDULED_SPECS]
    for task in syncs:
        assert task.max_active_tis_per_dagrun == 1, task.task_id
        keys = streams_by_task[task.task_id]
        assert keys == sorted(keys, key=order.index), task.task_id
    assert dag.get_task("summarise").upstream_task_ids == set(streams_by_task)
    assert any(spec.key in streams_by_task["sync_galaxy_people_and_reference"] for spec in VOLUNTEER_SPECS)
