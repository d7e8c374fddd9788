"""End to end: `cdp_sync` under Airflow, against the sandbox, lands what the generator says exists."""

from __future__ import annotations

import psycopg
import pytest

from cdp.devserver import connection_env
from cdp.sandbox.faults import Fault
from cdp.sandbox.generator import World
from cdp.sandbox.server import SandboxServer
from cdp.sync.specs import SPECS


@pytest.fixture
def sandbox_connections(monkeypatch: pytest.MonkeyPatch, warehouse_url: str, tmp_path):
    world = World(seed=5, learners=200)
    with SandboxServer(world, ledger_folder=tmp_path / "ledger-drop") as sandbox:
        monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
        for source in {spec.source for spec in SPECS}:
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
        dag_events = conn.execute(
            "SELECT count(*) FROM audit.audit_events WHERE action = 'import' AND dag_id = 'cdp_sync' AND run_id = %s",
            (dag_run.run_id,),
        ).fetchone()[0]
    assert runs == {spec.key: world.truth.expected_count(spec.source, spec.stream) for spec in SPECS}
    assert people == world.truth.expected_count("moodle", "users") - len(
        world.truth.malformed("moodle", "users")
    )
    assert dag_events == len(SPECS)
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
    assert landed == {spec.key for spec in SPECS if spec.source != "salesforce"}
