"""End to end: `cdp_sync` under Airflow, against the sandbox, lands what the generator says exists."""

from __future__ import annotations

from datetime import timedelta

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


def test_each_stream_has_its_own_task_in_its_sources_pool_after_the_streams_it_declares(load_dag) -> None:
    from cdp.sources.order import dependencies

    dag = load_dag("cdp_sync")
    syncs = {task.task_id: task for task in dag.tasks if task.task_id.startswith("sync_")}
    by_key = {task.op_kwargs["stream_key"]: task for task in syncs.values()}

    assert sorted(by_key) == sorted(spec.key for spec in SCHEDULED_SPECS)
    for key, task in by_key.items():
        assert task.task_id == "sync_" + key.replace(".", "_")
        assert task.pool == source_pool(key.split(".")[0]), key
    assert {task.pool for task in syncs.values()} >= {
        "moodle_api",
        "salesforce_api",
        "stripe_api",
        "survey_api",
        "galaxy_api",
    }

    def ancestors(task) -> set[str]:
        found: set[str] = set()
        for upstream in task.upstream_task_ids:
            found |= {upstream, *ancestors(dag.get_task(upstream))}
        return found

    # Every declared dependency (and its wave's) is an edge or implied by edges: a refund after its charge,
    # Opportunities and ReferralHero after Stripe's charges, Zendesk after ReferralHero, activity after people.
    for key, before in dependencies(SCHEDULED_SPECS).items():
        assert {by_key[other].task_id for other in before} <= ancestors(by_key[key]), key
    assert by_key["stripe.charges"].task_id in by_key["stripe.refunds"].upstream_task_ids
    assert by_key["stripe.refunds"].task_id in by_key["stripe.balance_transactions"].upstream_task_ids
    # People sources one after another in a fixed order (the order shapes who is joined to whom), volunteers
    # after the CRM's contacts (they resolve to the LMS's and CRM's people).
    assert by_key["moodle.users"].upstream_task_ids == set()
    assert by_key["salesforce.Contact"].upstream_task_ids == {"sync_moodle_users"}
    assert by_key["galaxy.users"].upstream_task_ids == {"sync_salesforce_Contact"}
    # A child waits while its parent runs or waits for a retry, then runs once it is done, even failed.
    for task in syncs.values():
        assert task.trigger_rule == ("all_done" if task.upstream_task_ids else "all_success"), task.task_id
    assert dag.get_task("summarise").upstream_task_ids == set(syncs)
    assert dag.get_task("announce_first_complete_sync").upstream_task_ids == {"summarise"}
    assert any(spec.key in by_key for spec in VOLUNTEER_SPECS)


def _asset_events(run_id: str) -> dict[str, int]:
    """Asset name -> events the run emitted, from Airflow's metadata database."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        rows = session.execute(
            select(AssetModel.name, func.count())
            .join(AssetEvent, AssetEvent.asset_id == AssetModel.id)
            .where(AssetEvent.source_run_id == run_id)
            .group_by(AssetModel.name)
        ).all()
    return {name: count for name, count in rows}


@pytest.mark.slow
def test_asset_events_come_only_from_runs_that_changed_rows_and_ready_from_the_first_complete_one(
    load_dag, warehouse_url: str, sandbox_connections
) -> None:
    dag = load_dag("cdp_sync")

    # Both runs as triggered from the CLI or the UI: no logical date, no data interval.
    first = dag.test(logical_date=None)
    second = dag.test(logical_date=None)  # the sources have nothing new

    assert first.state == second.state == "success"
    assert first.data_interval_start is None and first.data_interval_end is None
    first_events = _asset_events(first.run_id)
    assert first_events.pop("warehouse.ready") == 1
    assert first_events == {f"warehouse.{entity}": n for entity, n in _streams_per_entity().items()}
    assert _asset_events(second.run_id) == {}
    states = {ti.task_id: ti.state for ti in second.get_task_instances()}
    assert states["announce_first_complete_sync"] == "skipped"
    assert states["summarise"] == "success"


def _streams_per_entity() -> dict[str, int]:
    counts: dict[str, int] = {}
    for spec in SCHEDULED_SPECS:
        counts[spec.entity] = counts.get(spec.entity, 0) + 1
    return counts


@pytest.mark.slow
def test_children_wait_for_their_parents_retry_and_no_orphan_they_could_have_joined_is_left(
    load_dag, warehouse_url: str, sandbox_connections
) -> None:
    _, sandbox = sandbox_connections
    # Both of the connector's attempts at Stripe's charges fail on the task's first try; the retry lands them.
    # check_sources (first, before any activity stream) meets two of the four 500s first: a warning there.
    sandbox.faults.add(Fault("server_error", "stripe", "charges", times=4))
    dag = load_dag("cdp_sync", retries=1)
    for task in dag.tasks:
        task.retry_delay = timedelta(seconds=1)

    dag_run = dag.test()

    assert dag_run.state == "success"
    tis = {ti.task_id: ti for ti in dag_run.get_task_instances()}
    charges = tis["sync_stripe_charges"]
    assert charges.try_number == 2 and charges.state == "success"
    # Refunds, balance transactions, Opportunities and ReferralHero started only after the charges' retry.
    for child in ("sync_stripe_refunds", "sync_stripe_balance_transactions", "sync_salesforce_Opportunity",
                  "sync_referralhero_subscribers"):  # fmt: skip
        assert tis[child].start_date >= charges.end_date, child
    with psycopg.connect(warehouse_url) as conn:
        waiting, joinable = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM core.donation d WHERE d.source ="
            " 'stripe' AND d.source_record_id = coalesce(q.payload ->> 'charge', q.payload ->> 'source')))"
            " FROM ops.quarantine q WHERE q.resolved_at IS NULL AND q.reason LIKE 'unknown charge:%'"
        ).fetchone()
        refunds = conn.execute("SELECT count(*) FROM core.refund").fetchone()[0]
    assert refunds > 0
    # Whatever waits for a charge waits for one the source never sent; none waits for a charge that landed.
    assert joinable == 0, f"{joinable} of {waiting} quarantined rows point to a charge in core"
