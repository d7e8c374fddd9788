"""Faults on the production shape (issue 20, item 2): ``cdp_sync`` through the CeleryExecutor (Redis broker,
Airflow's metadata and Celery's results in their own PostgreSQL database, the warehouse in another), against
the same history run in process.

A Celery worker is killed with SIGKILL, its whole process group at once (the machine lost), while one of its
tasks waits on a slow vendor page: no message, no clean shutdown. The scheduler notices the task's missing
heartbeat (``task_instance_heartbeat_timeout``, 30 s here instead of 300), fails that try, and its retry
runs on a second worker started after the loss. Each stream lands in one transaction, so the killed try
left nothing half-written: the warehouse equals the in-process history, and each stream landed once per
interval.

Then Redis, the broker, is restarted empty in the middle of a re-run of that interval: the runs complete,
nothing is lost or landed twice, and the warehouse is unchanged. Last, the warehouse is unreachable for a
minute (the line to it cut by a proxy, ``tests/tcp_proxy.py``; the suite's PostgreSQL serves every test, so it
is the network that fails, not the server): the try it hits fails, the retry lands, the run succeeds and no
alert goes out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from airflow_cluster import (
    DEFAULT_QUEUE,
    AirflowCluster,
    CeleryWorker,
    drop_metadata_database,
    metadata_database,
)
from redis_server import RedisServer
from support import (
    STATE_QUERIES,
    cluster_connections,
    create_database,
    drop_database,
    scheduled_history,
    state_difference,
    warehouse_state,
)
from tcp_proxy import TcpProxy

from cdp.sync.specs import SCHEDULED_SPECS
from cdp_sandbox.faults import Fault
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer

WORLD_START = datetime(2026, 11, 29, 0, tzinfo=UTC)
WORLD_END = WORLD_START + timedelta(hours=2)
#: One run of cdp_sync, its 2 hours: each task parses the DAG in a new process, so a run through two slots takes
#: minutes on a busy machine, and the faults need no more than one.
INTERVALS = [(WORLD_START, WORLD_END)]
#: The connectors' settings in the cluster and in the in-process history alike; a client timeout longer than
#: the slow page, so the page is still being waited for when the worker dies.
SETTINGS = {"max_attempts": 2, "retry_base_delay": 0.01, "timeout": 300}
SLOW_SECONDS = 150
KILLED_TASK = "sync_moodle_users"
FIRST, SECOND = CeleryWorker("first", (DEFAULT_QUEUE,), 2), CeleryWorker("second", (DEFAULT_QUEUE,), 2)

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.timeout(2700)]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Iterator[SandboxServer]:
    world = World(seed=31, learners=40, start=WORLD_START, end=WORLD_END)
    with SandboxServer(world, ledger_folder=tmp_path_factory.mktemp("ledger")) as server:
        yield server


@pytest.fixture(scope="module")
def warehouse(pg_server, migrated_template) -> Iterator[str]:
    name = create_database(pg_server, migrated_template)
    yield pg_server.url(name)
    drop_database(pg_server, name)


@pytest.fixture(scope="module")
def redis(tmp_path_factory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def warehouse_line(warehouse: str) -> Iterator[tuple[TcpProxy, str]]:
    """The cluster reaches the warehouse through a proxy that a test can cut: (proxy, URL through it)."""
    proxy, url = TcpProxy.to(warehouse)
    with proxy:
        yield proxy, url


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory,
    pg_server,
    sandbox: SandboxServer,
    warehouse_line: tuple[TcpProxy, str],
    redis: RedisServer,
) -> Iterator[AirflowCluster]:
    connections = cluster_connections(sandbox, warehouse_line[1], **SETTINGS)
    metadata, metadata_url = metadata_database(pg_server)
    cluster = AirflowCluster(
        tmp_path_factory.mktemp("airflow"), metadata_url, connections, executor="CeleryExecutor",
        broker_url=redis.url, workers=(FIRST,),
        env={
            # A lost task is noticed after 30 s without a heartbeat (Airflow's default: 300 s).
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            # A message the dead worker had reserved but not started: failed back after 90 s, not 600.
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "90",
        },
    )  # fmt: skip
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        drop_metadata_database(pg_server, metadata)


def _backfill(cluster: AirflowCluster, *extra: str) -> int:
    """``airflow backfill create`` of cdp_sync over INTERVALS: the new backfill's id."""
    known = {row[0] for row in cluster.query("SELECT id FROM backfill")}
    cluster.airflow(
        "backfill", "create", "--dag-id", "cdp_sync", "--from-date", INTERVALS[0][1].isoformat(),
        "--to-date", INTERVALS[-1][1].isoformat(), "--max-active-runs", "1", *extra,
    )  # fmt: skip
    (backfill_id,) = {row[0] for row in cluster.query("SELECT id FROM backfill")} - known
    return backfill_id


def _settled(cluster: AirflowCluster) -> None:
    """Wait for every backfill to complete (one a failed test before left running), then make sure the
    interval has a successful run to re-run (the test runs alone: ``-k``)."""
    for (backfill_id,) in cluster.query("SELECT id FROM backfill WHERE completed_at IS NULL"):
        _wait_for_backfill(cluster, backfill_id, "a backfill an earlier test left running")
    if not [r for r in cluster.runs("cdp_sync") if r["run_type"] == "backfill" and r["state"] == "success"]:
        _wait_for_backfill(cluster, _backfill(cluster), "the first run")


def _wait_for_backfill(cluster: AirflowCluster, backfill_id: int, what: str) -> None:
    cluster.wait(lambda: cluster.query("SELECT completed_at FROM backfill WHERE id = %s", (backfill_id,))[0][0],
                 1500, f"backfill {backfill_id} ({what}) did not complete")  # fmt: skip


def _assert_exact(warehouse: str, expected: dict[str, list[str]], runs: list[dict]) -> None:
    """The warehouse holds ``expected`` and every stream landed once in each of ``runs``."""
    got = warehouse_state(warehouse)
    for name in STATE_QUERIES:
        assert got[name] == expected[name], (name, state_difference(expected[name], got[name]))
    with psycopg.connect(warehouse) as conn:
        landed = dict(conn.execute(
            "SELECT source || '.' || stream, count(*) FROM ops.sync_run WHERE run_id = ANY(%s) GROUP BY 1",
            ([r["run_id"] for r in runs],),
        ).fetchall())  # fmt: skip
    assert landed == {spec.key: len(runs) for spec in SCHEDULED_SPECS}, "each stream landed once a run"


def _tries(cluster: AirflowCluster, task_id: str) -> list[tuple]:
    """Each try of ``task_id`` in the backfill's runs: (run, try number, state, Celery worker node)."""
    return cluster.query(
        "SELECT t.run_id, t.try_number, t.state, m.worker FROM ("
        "  SELECT run_id, try_number, state, external_executor_id FROM task_instance"
        "  WHERE dag_id = 'cdp_sync' AND task_id = %s"
        "  UNION ALL SELECT run_id, try_number, state, external_executor_id FROM task_instance_history"
        "  WHERE dag_id = 'cdp_sync' AND task_id = %s) t"
        " LEFT JOIN celery_taskmeta m ON m.task_id = t.external_executor_id ORDER BY 1, 2",
        (task_id, task_id),
    )


def test_a_worker_killed_mid_task_is_retried_on_another_and_the_warehouse_is_exact(
    cluster: AirflowCluster, sandbox: SandboxServer, warehouse: str, another_warehouse
) -> None:
    expected_url = another_warehouse()
    scheduled_history(expected_url, sandbox, INTERVALS, **SETTINGS)
    expected = warehouse_state(expected_url)
    assert expected["people"] and expected["donations"] and expected["enrollments"]

    slow = sandbox.faults.add(Fault("slow", "moodle", "users", times=1, delay=SLOW_SECONDS))
    backfill_id = _backfill(cluster)
    # The run's Moodle users task is waiting on its slow page, on the only worker there is.
    cluster.wait(lambda: slow.hits == 1 and [t for t in _tries(cluster, KILLED_TASK) if t[2] == "running"], 600,
                 f"{KILLED_TASK} never got to its slow page")  # fmt: skip
    cluster.kill(FIRST.component)
    cluster.add_worker(SECOND)

    _wait_for_backfill(cluster, backfill_id, "the run whose worker was killed")
    runs = [run for run in cluster.runs("cdp_sync") if run["backfill_id"] == backfill_id]
    assert [(r["data_interval_start"], r["data_interval_end"]) for r in runs] == INTERVALS
    assert {r["state"] for r in runs} == {"success"}, runs

    tries = _tries(cluster, KILLED_TASK)
    run_id = runs[0]["run_id"]
    lost, *_, retried = [t for t in tries if t[0] == run_id]
    assert lost[2] in {"failed", "up_for_retry"}, lost
    assert lost[3] is None or lost[3].split("@")[0] == FIRST.name, lost
    assert retried[2] == "success" and retried[1] > lost[1], retried
    assert retried[3].split("@")[0] == SECOND.name, f"the retry ran on {retried[3]}"

    _assert_exact(warehouse, expected, runs)


def test_redis_restarted_mid_run_loses_no_work_and_runs_nothing_twice(
    cluster: AirflowCluster, sandbox: SandboxServer, warehouse: str, redis: RedisServer
) -> None:
    """The broker restarts empty (no persistence) while a re-run of the interval is under way: messages
    queued in it are gone. The workers and the scheduler reconnect; a task whose message was lost is failed
    back after ``task_queued_timeout`` and queued again. Re-runs change nothing that is right, so the warehouse
    is as before, and no stream landed twice in one run."""
    _settled(cluster)
    before = warehouse_state(warehouse)
    slow = sandbox.faults.add(Fault("slow", "moodle", "users", times=1, delay=20))
    backfill_id = _backfill(cluster, "--reprocess-behavior", "completed")
    cluster.wait(lambda: slow.hits == 1, 600, "the re-run never reached Moodle")
    redis.stop()
    redis.start()
    # It came back empty: nothing on disk to load (the workers and the scheduler reconnect at once and write
    # their bookkeeping keys, so the key count right after the start is a race, not evidence).
    assert not [p.name for p in redis.folder.iterdir() if p.suffix in {".rdb", ".aof"}], (
        "the broker saved its data"
    )
    assert "DB loaded from" not in redis.log.read_text(), "the broker loaded its old messages"

    _wait_for_backfill(cluster, backfill_id, "the re-run after Redis restarted")
    runs = [run for run in cluster.runs("cdp_sync") if run["backfill_id"] == backfill_id]
    assert {r["state"] for r in runs} == {"success"}, runs
    _assert_exact(warehouse, before, runs)


def test_the_warehouse_unreachable_for_a_minute_is_retried_and_the_run_succeeds_without_an_alert(
    cluster: AirflowCluster, sandbox: SandboxServer, warehouse: str, warehouse_line: tuple[TcpProxy, str]
) -> None:
    """The line to the warehouse is cut for 60 s while a re-run's Moodle task holds its transaction open (on a
    slow page): that try fails, its retry (backoff from 1 minute) finds the warehouse back, the run succeeds,
    nothing changed, and no alert went out, since no run failed."""
    proxy = warehouse_line[0]
    _settled(cluster)
    before = warehouse_state(warehouse)
    alerts = len(sandbox.slack_messages)
    tries = {t[:2]: t[2] for t in _tries(cluster, KILLED_TASK)}
    slow = sandbox.faults.add(Fault("slow", "moodle", "users", times=1, delay=10))
    backfill_id = _backfill(cluster, "--reprocess-behavior", "completed")
    cluster.wait(lambda: slow.hits == 1, 600, "the re-run never reached Moodle")
    proxy.cut()
    time.sleep(60)
    proxy.restore()

    _wait_for_backfill(cluster, backfill_id, "the re-run after the warehouse came back")
    runs = [run for run in cluster.runs("cdp_sync") if run["backfill_id"] == backfill_id]
    assert {r["state"] for r in runs} == {"success"}, runs
    new_tries = [t for t in _tries(cluster, KILLED_TASK) if t[:2] not in tries]
    assert [t[2] for t in new_tries][-1] == "success" and len(new_tries) >= 2, (
        f"the try the outage hit failed and a retry landed: {new_tries}"
    )
    _assert_exact(warehouse, before, runs)
    assert len(sandbox.slack_messages) == alerts, "a run that succeeded after retries sends no alert"
