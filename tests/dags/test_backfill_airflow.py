"""Under a real Airflow (scheduler, dag-processor, triggerer, api-server; LocalExecutor):

- ``airflow backfill create`` of ``cdp_sync`` over past intervals runs one 2-hour interval per run and
  leaves the same warehouse as the scheduled runs of those intervals, one after another, would have.
- ``--reprocess-behavior completed`` re-runs intervals that already succeeded, through the scheduler: the
  warehouse is unchanged, no core row changes are audited (only the imports), the watermarks stay put
  (``tests/sync/test_backfill.py`` shows the same in-process, out of order).
- the DeadlineAlert on ``cdp_sync`` fires: the scheduler finds the missed deadline, the triggerer runs its
  Slack notifier, and the sandbox's webhook receiver gets the message, once; runs that finish in time
  send nothing.

The sandbox world is 4 hours long (2 sync intervals of a task run per stream, each in its vendor's pool,
plus the summary and the first-complete announcement; three backfills of them plus the
deadline run), so the module runs in several minutes on
an idle machine (each task run parses the DAG file in a new process: a busy machine makes it much slower).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from airflow_cluster import AirflowCluster, drop_metadata_database, metadata_database
from support import (
    STATE_QUERIES,
    cluster_connections,
    create_database,
    drop_database,
    scheduled_history,
    state_difference,
    warehouse_state,
)

from cdp.sync.specs import SCHEDULED_SPECS
from cdp_sandbox.faults import Fault
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer

WORLD_START = datetime(2026, 11, 29, 0, tzinfo=UTC)
WORLD_END = WORLD_START + timedelta(hours=4)
STEP = timedelta(hours=2)  # cdp_sync's schedule: every 2 hours, each run covering the 2 hours before it
INTERVALS = [(WORLD_START + STEP * n, WORLD_START + STEP * (n + 1)) for n in range(2)]
HOURGLASS = ":hourglass:"

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.timeout(2400)]


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=31, learners=40, start=WORLD_START, end=WORLD_END)


@pytest.fixture(scope="module")
def sandbox(world: World, tmp_path_factory) -> Iterator[SandboxServer]:
    with SandboxServer(world, ledger_folder=tmp_path_factory.mktemp("ledger")) as server:
        yield server


@pytest.fixture(scope="module")
def airflow_warehouse(pg_server, migrated_template) -> Iterator[str]:
    name = create_database(pg_server, migrated_template)
    yield pg_server.url(name)
    drop_database(pg_server, name)


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory, pg_server, sandbox: SandboxServer, airflow_warehouse: str
) -> Iterator[AirflowCluster]:
    connections = cluster_connections(sandbox, airflow_warehouse, max_attempts=2, retry_base_delay=0.01)
    metadata, metadata_url = metadata_database(pg_server)  # its own role, as `make run` has it
    cluster = AirflowCluster(tmp_path_factory.mktemp("airflow"), metadata_url, connections)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        drop_metadata_database(pg_server, metadata)


def _scheduled_history(url: str, sandbox: SandboxServer, intervals: list[tuple[datetime, datetime]]) -> None:
    scheduled_history(url, sandbox, intervals, max_attempts=2, retry_base_delay=0.01)


def _backfill(
    cluster: AirflowCluster, first: datetime, last: datetime, *extra: str, timeout: float = 900
) -> list[dict]:
    """Create a backfill of cdp_sync with the CLI and wait until the scheduler has finished its runs."""
    before = {row[0] for row in cluster.query("SELECT id FROM backfill")}
    cluster.airflow(
        "backfill", "create", "--dag-id", "cdp_sync", "--from-date", first.isoformat(), "--to-date",
        last.isoformat(), "--max-active-runs", "1", *extra,
    )  # fmt: skip
    (backfill_id,) = {row[0] for row in cluster.query("SELECT id FROM backfill")} - before
    cluster.wait(
        lambda: cluster.query("SELECT completed_at FROM backfill WHERE id = %s", (backfill_id,))[0][0],
        timeout,
        f"backfill {backfill_id} did not complete",
    )
    return [run for run in cluster.runs("cdp_sync") if run["backfill_id"] == backfill_id]


def test_airflow_backfill_create_equals_the_scheduled_history(
    cluster: AirflowCluster, sandbox: SandboxServer, airflow_warehouse: str, another_warehouse
) -> None:
    scheduled = another_warehouse()
    _scheduled_history(scheduled, sandbox, INTERVALS[:-1])
    all_but_the_last = warehouse_state(scheduled)
    _scheduled_history(scheduled, sandbox, INTERVALS[-1:])
    expected = warehouse_state(scheduled)
    # The comparison can tell histories apart: the last interval alone changes what the warehouse holds.
    assert all_but_the_last != expected
    assert expected["people"] and expected["donations"] and expected["raw"] and expected["enrollments"]

    runs = _backfill(cluster, INTERVALS[0][1], INTERVALS[-1][1])

    assert [(r["data_interval_start"], r["data_interval_end"]) for r in runs] == INTERVALS
    assert {(r["run_type"], r["state"]) for r in runs} == {("backfill", "success")}, runs
    backfilled = warehouse_state(airflow_warehouse)
    for name in STATE_QUERIES:
        assert backfilled[name] == expected[name], (name, state_difference(expected[name], backfilled[name]))
    with psycopg.connect(airflow_warehouse) as conn:
        landed = conn.execute(
            "SELECT count(DISTINCT run_id), count(*) FROM ops.sync_run WHERE run_id LIKE 'backfill__%'"
        ).fetchone()
    assert landed == (len(INTERVALS), len(INTERVALS) * len(SCHEDULED_SPECS))

    # Runs that finished within their deadline raised no deadline alert.
    assert not [m for m in sandbox.slack_messages if HOURGLASS in m["payload"].get("text", "")]


WATERMARKS = "SELECT source, stream, watermark FROM ops.sync_watermark ORDER BY 1, 2"
# Rows the change triggers write (and every other event except the per-stream import events).
CHANGES = (
    "SELECT action, entity_type, details ->> 'rows', left(details ->> 'statement', 200) FROM audit.audit_events"
    " WHERE action <> 'import' ORDER BY seq OFFSET %s"
)


def test_a_reprocessing_backfill_of_completed_intervals_changes_nothing(
    cluster: AirflowCluster, airflow_warehouse: str
) -> None:
    first = [r for r in cluster.runs("cdp_sync") if r["run_type"] == "backfill" and r["state"] == "success"]
    if not first:  # run alone (-k): the intervals must have run once first
        first = _backfill(cluster, INTERVALS[0][1], INTERVALS[-1][1])
    before = warehouse_state(airflow_warehouse)
    with psycopg.connect(airflow_warehouse) as conn:
        watermarks = conn.execute(WATERMARKS).fetchall()
        events = conn.execute("SELECT count(*) FROM audit.audit_events WHERE action <> 'import'").fetchone()[
            0
        ]
        imports = conn.execute("SELECT count(*) FROM audit.audit_events WHERE action = 'import'").fetchone()[
            0
        ]
    assert before["people"] and watermarks

    runs = _backfill(cluster, INTERVALS[0][1], INTERVALS[-1][1], "--reprocess-behavior", "completed")

    # The same two intervals ran again (the runs the first backfill made, cleared and re-run), and succeeded.
    assert [(r["data_interval_start"], r["data_interval_end"]) for r in runs] == INTERVALS
    assert {(r["run_type"], r["state"]) for r in runs} == {("backfill", "success")}, runs
    assert {r["run_id"] for r in runs} == {r["run_id"] for r in first}
    after = warehouse_state(airflow_warehouse)
    for name in STATE_QUERIES:
        assert after[name] == before[name], (name, state_difference(before[name], after[name]))
    with psycopg.connect(airflow_warehouse) as conn:
        assert conn.execute(WATERMARKS).fetchall() == watermarks
        assert conn.execute(CHANGES, (events,)).fetchall() == []
        # It did re-read every stream of both intervals: one import event each.
        reimported = conn.execute(
            "SELECT count(*) FROM audit.audit_events WHERE action = 'import'"
        ).fetchone()[0]
    assert reimported - imports == len(INTERVALS) * len(SCHEDULED_SPECS)


def test_the_sync_deadline_alert_fires_once_when_a_run_overruns(
    cluster: AirflowCluster, sandbox: SandboxServer
) -> None:
    # The first request to Moodle hangs for a while, so the run is still going when its deadline passes.
    sandbox.faults.add(Fault("slow", "moodle", "users", times=1, delay=20))
    run_id = "manual__deadline_check"
    cluster.airflow("dags", "trigger", "cdp_sync", "--run-id", run_id)

    deadline_id, deadline_time, queued_at = cluster.wait(
        lambda: cluster.query(
            "SELECT d.id, d.deadline_time, r.queued_at FROM deadline d JOIN dag_run r ON r.id = d.dagrun_id"
            " WHERE r.run_id = %s",
            (run_id,),
        ),
        120,
        "the scheduler did not create the run's deadline",
    )[0]
    assert timedelta(hours=2) - timedelta(minutes=1) <= deadline_time - queued_at <= timedelta(hours=2)
    # Two hours cannot pass in a test: the one lever is the clock, so the deadline is moved into the past.
    # Everything after it is Airflow's own: the scheduler loop finds the missed deadline and queues its
    # callback, the triggerer runs the Slack notifier.
    cluster.execute(
        "UPDATE deadline SET deadline_time = now() - interval '1 second' WHERE id = %s", (deadline_id,)
    )

    def hourglass() -> list[dict]:
        return [m for m in sandbox.slack_messages if HOURGLASS in m["payload"].get("text", "")]

    (message,) = cluster.wait(hourglass, 120, "no deadline alert reached the Slack receiver")
    text = message["payload"]["text"]
    assert text.startswith(
        f":hourglass: *cdp_sync* run `{run_id}` has not finished within 2 hours of being queued"
    )
    assert "Check the run's running tasks in the Airflow UI." in text
    assert cluster.query("SELECT missed FROM deadline WHERE id = %s", (deadline_id,)) == [(True,)]

    time.sleep(20)  # many more scheduler loops (one a second): a missed deadline is handled once
    assert len(hourglass()) == 1
