"""The production shape, run for real without Docker (issue 20, item 1): Airflow's CeleryExecutor with Redis as
its broker, Airflow's metadata in its own PostgreSQL database (Celery's results beside it), the warehouse in
another, an api-server, scheduler, dag-processor and triggerer, and two Celery workers on two queues:
``default`` (Airflow's ``operators.default_queue``) and ``heavy``, which gets the identity scoring and merging
and the month's reconciliation: the DAGs send them to the queue ``CDP_HEAVY_QUEUE`` names
(``cdp.runtime.heavy_task_args``), set here as docker-compose sets it for its ``airflow-worker-heavy``.

``cdp_dedupe`` (full, in several mapped shards) and ``cdp_reconcile`` are triggered together through the
scheduler, on a warehouse synced from the sandbox. What Airflow and Celery record in the metadata database
shows where each task ran: ``task_instance.queue``, ``task_instance.external_executor_id`` (the Celery task id)
and, for that id, ``celery_taskmeta.worker`` (the worker's node name, ``heavy@host``; ``task_instance.hostname``
is the machine, the same for both workers here). Every task ran on the worker of its queue, both workers ran
tasks, and the warehouse is the one the same steps leave when run in-process, one after another.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

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
from support import cluster_connections, create_database, drop_database, state_difference, warehouse_state

from cdp.finance.reconcile import reconcile_month
from cdp.identity.runs import DedupeSettings, apply_run, finish_run, score_shard, start_run
from cdp.runtime import HEAVY_QUEUE_ENV
from cdp.warehouse import Actor
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer
from cdp_sandbox.truth import sync_sandbox

HEAVY = "heavy"
WORKERS = (CeleryWorker("default", (DEFAULT_QUEUE,)), CeleryWorker(HEAVY, (HEAVY,)))
ROUTES = {
    "cdp_dedupe.score_shard": HEAVY,
    "cdp_dedupe.merge_and_queue": HEAVY,
    "cdp_reconcile.reconcile": HEAVY,
}
SHARD_SIZE = 100  # the smallest the DAG's param allows: several mapped shards from a small world
MONTH = (
    "2000-01"  # a month before the world's history: the reconciliation finds nothing to differ, and passes
)
RUN_TIMEOUT = 900


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Iterator[SandboxServer]:
    with SandboxServer(
        World(seed=11, learners=120), ledger_folder=tmp_path_factory.mktemp("ledger")
    ) as server:
        yield server


@pytest.fixture(scope="module")
def warehouses(pg_server, migrated_template, sandbox: SandboxServer) -> Iterator[tuple[str, str]]:
    """(the stack's warehouse, a copy of it for the in-process expectation), synced from the sandbox."""
    synced = create_database(pg_server, migrated_template)
    sync_sandbox(pg_server.url(synced), sandbox)
    copy = create_database(pg_server, synced)
    yield pg_server.url(synced), pg_server.url(copy)
    for name in (synced, copy):
        drop_database(pg_server, name)


@pytest.fixture(scope="module")
def redis(tmp_path_factory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory, pg_server, sandbox: SandboxServer, warehouses: tuple[str, str], redis: RedisServer
) -> Iterator[AirflowCluster]:
    connections = cluster_connections(sandbox, warehouses[0], sources=False)
    metadata, metadata_url = metadata_database(pg_server)  # never shared with another stack
    cluster = AirflowCluster(
        tmp_path_factory.mktemp("airflow"), metadata_url, connections,
        executor="CeleryExecutor", broker_url=redis.url, workers=WORKERS, env={HEAVY_QUEUE_ENV: HEAVY},
    )  # fmt: skip
    started = time.monotonic()
    try:
        cluster.start()
        steps = ", ".join(f"{step} {seconds:.0f} s" for step, seconds in cluster.timings.items())
        print(f"\nthe Celery stack came up in {time.monotonic() - started:.0f} s ({steps})")
        yield cluster
    finally:
        cluster.stop()
        drop_metadata_database(pg_server, metadata)


def _trigger(cluster: AirflowCluster, dag_id: str, run_id: str, conf: dict) -> None:
    cluster.wait(lambda: cluster.query("SELECT 1 FROM serialized_dag WHERE dag_id = %s", (dag_id,)), 300,
                 f"the dag-processor did not serialise {dag_id}")  # fmt: skip
    cluster.airflow("dags", "trigger", dag_id, "--run-id", run_id, "--conf", json.dumps(conf))


def _finished(cluster: AirflowCluster, run_ids: list[str]) -> dict[str, str] | None:
    states = dict(cluster.query("SELECT run_id, state FROM dag_run WHERE run_id = ANY(%s)", (run_ids,)))
    return states if len(states) == len(run_ids) and {*states.values()} <= {"success", "failed"} else None


def _tasks(cluster: AirflowCluster, run_ids: list[str]) -> list[tuple]:
    """Each task instance: (dag.task[map index], state, queue, machine, Celery worker node, Celery status)."""
    return cluster.query(
        "SELECT ti.dag_id || '.' || ti.task_id || CASE WHEN ti.map_index >= 0 THEN '[' || ti.map_index || ']'"
        " ELSE '' END, ti.state, ti.queue, ti.hostname, m.worker, m.status"
        " FROM task_instance ti LEFT JOIN celery_taskmeta m ON m.task_id = ti.external_executor_id"
        " WHERE ti.run_id = ANY(%s) ORDER BY 1",
        (run_ids,),
    )


def _in_process(url: str, run_id: str) -> None:
    """What the two runs do, step by step in this process: the expectation for the stack's warehouse."""
    actor = Actor("pytest")
    plan = start_run(url, actor, run_id, full=True, settings=DedupeSettings(shard_size=SHARD_SIZE))
    for shard in range(plan.shards):
        score_shard(url, actor, run_id, shard)
    apply_run(url, actor, run_id)
    finish_run(url, actor, run_id)
    reconcile_month(url, MONTH, actor=actor)


def _reconciliation(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT r.month, t.class, t.currency, t.rows, t.warehouse_minor, t.stripe_minor, t.ledger_minor,"
            " t.difference_minor, t.unexplained FROM ops.reconciliation_run r"
            " LEFT JOIN ops.reconciliation_total t USING (run_id) ORDER BY 1, 2, 3"
        ).fetchall()


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_dedupe_and_reconcile_run_on_both_celery_workers_and_leave_the_in_process_warehouse(
    stack: AirflowCluster, warehouses: tuple[str, str]
) -> None:
    url, expected_url = warehouses
    nodes = stack.celery_workers()
    assert {node.split("@")[0]: queues for node, queues in nodes.items()} == {
        "default": [DEFAULT_QUEUE],
        HEAVY: [HEAVY],
    }, "two workers, each consuming only its own queue"
    runs = ["celery_dedupe", "celery_reconcile"]
    started = time.monotonic()

    _trigger(stack, "cdp_dedupe", runs[0], {"full": True, "shard_size": SHARD_SIZE})
    _trigger(stack, "cdp_reconcile", runs[1], {"month": MONTH})
    states = stack.wait(lambda: _finished(stack, runs), RUN_TIMEOUT, "the two runs did not finish")
    # Celery writes a task's result once the task's process has ended: a moment after Airflow's state.
    tasks = stack.wait(
        lambda: (rows := _tasks(stack, runs)) and all(row[5] == "SUCCESS" for row in rows) and rows,
        120, "Celery did not record every task's result",
    )  # fmt: skip
    print(f"the two runs took {time.monotonic() - started:.0f} s on the stack; {len(tasks)} task instances")

    assert states == {run: "success" for run in runs}, "\n".join(map(str, _tasks(stack, runs)))
    for task, state, queue, machine, worker, _ in tasks:
        route = ROUTES.get(task.split("[")[0], DEFAULT_QUEUE)
        assert (state, queue) == ("success", route), task
        assert worker.split("@")[0] == route, f"{task} on the {route} queue ran on {worker}"
        assert machine, f"{task} has no hostname"
    assert {row[4].split("@")[0] for row in tasks} == {"default", HEAVY}, "both workers ran tasks"
    shards = [row[0] for row in tasks if row[0].startswith("cdp_dedupe.score_shard[")]
    assert len(shards) > 1, "the comparison is spread over several mapped shards"

    _in_process(expected_url, "in-process")
    with psycopg.connect(url) as conn:
        run = conn.execute(
            "SELECT status, mode, shards, merged, queued FROM ops.dedupe_run WHERE run_id = %s", (runs[0],)
        ).fetchone()
    assert run[:3] == ("succeeded", "full", len(shards)) and run[3] + run[4] > 0, run
    expected, got = warehouse_state(expected_url), warehouse_state(url)
    for name in expected:
        assert got[name] == expected[name], (name, state_difference(expected[name], got[name]))
    assert _reconciliation(url) == _reconciliation(expected_url) != []


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_stack_runs_each_process_in_its_own_group(stack: AirflowCluster, redis: RedisServer) -> None:
    """The fixture's teardown kills process groups: every process the stack started leads its own."""
    assert redis.command("PING") == "+PONG"
    assert set(stack.processes) == {
        "api-server", "scheduler", "dag-processor", "triggerer", "celery-worker-default", "celery-worker-heavy"
    }  # fmt: skip
    for name, process in stack.processes.items():
        assert process.poll() is None, f"{name} exited: {stack.log_tail(name)}"
        assert os.getpgid(process.pid) == process.pid, name


def test_a_redis_server_answers_and_stop_leaves_nothing_of_its_group(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as server:
        assert server.command("PING") == "+PONG"
        assert server.command("SET", "k", "v") == "+OK" and server.command("GET", "k") == "$1"
        process = server.process
        assert process is not None and os.getpgid(process.pid) == process.pid
    assert process.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)
    assert server.command("PING") is None, "nobody answers on its port any more"


def test_the_celery_cluster_configures_redis_and_results_in_the_metadata_database(tmp_path: Path) -> None:
    metadata = "postgresql://airflow_x:secret@127.0.0.1:5432/airflow_x"

    cluster = AirflowCluster(tmp_path, metadata, {}, executor="CeleryExecutor", broker_url="redis://127.0.0.1:6390/0",
                             workers=WORKERS, env={HEAVY_QUEUE_ENV: HEAVY})  # fmt: skip

    assert cluster.env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert cluster.env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6390/0"
    assert (
        cluster.env["AIRFLOW__CELERY__RESULT_BACKEND"]
        == "db+postgresql+psycopg://airflow_x:secret@127.0.0.1:5432/airflow_x"
    )
    assert cluster.env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"] == DEFAULT_QUEUE
    assert cluster.env[HEAVY_QUEUE_ENV] == HEAVY, "the env given reaches every process"
    assert AirflowCluster(tmp_path, metadata, {}).env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    with pytest.raises(ValueError, match="needs a broker_url and workers"):
        AirflowCluster(
            tmp_path, metadata, {}, executor="CeleryExecutor", broker_url="redis://127.0.0.1:6390/0"
        )
    with pytest.raises(ValueError, match="needs a broker_url and workers"):
        AirflowCluster(tmp_path, metadata, {}, broker_url="redis://127.0.0.1:6390/0", workers=WORKERS)


@pytest.mark.parametrize("queue", [HEAVY, ""])
def test_the_dags_send_only_the_heavy_tasks_to_the_heavy_queue(queue: str, monkeypatch) -> None:
    """``CDP_HEAVY_QUEUE`` where the DAG files are parsed (as the dag-processor parses them) routes exactly the
    heavy tasks; unset, every task stays on Airflow's default queue (the LocalExecutor, compose without it)."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv(HEAVY_QUEUE_ENV, queue)
    dags = Path(__file__).resolve().parents[2] / "dags"
    queues = {}
    for dag_id in ("cdp_dedupe", "cdp_reconcile", "cdp_sync"):
        for task in DagBag(dag_folder=str(dags / f"{dag_id}.py")).dags[dag_id].tasks:
            queues[f"{dag_id}.{task.task_id}"] = task.queue

    heavy = {task for task, routed in queues.items() if routed == HEAVY}
    assert heavy == (set(ROUTES) if queue else set())
    assert {routed for task, routed in queues.items() if task not in heavy} == {DEFAULT_QUEUE}
