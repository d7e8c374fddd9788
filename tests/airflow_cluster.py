"""A real Airflow for tests: api-server, scheduler, dag-processor and triggerer on a temporary AIRFLOW_HOME.

``dag.test()`` runs a DAG in the test process and skips the scheduler, so what only the scheduler does
(backfill runs, deadline alerts) is checked against these processes: LocalExecutor, the project's ``dags/``,
and Airflow's metadata in its own database on the suite's PostgreSQL, owned by its own non-superuser role
as `make run` has it (``metadata_database``; SQLite locks up under four processes writing at once). The
scheduler's own schedule is switched off (``use_job_schedule = False``): only the runs a test creates (a
backfill, a trigger) run, so nothing runs that the test did not ask for. Tests read the metadata database
directly, read-only.

With ``executor="CeleryExecutor"`` it is the production shape instead (issue 20): the scheduler sends each task
to a Redis broker (``tests/redis_server.py``), ``airflow celery worker`` processes (``CeleryWorker``), each on
its own queues, take them from there and run them through the api-server's execution API, and Celery keeps
its results in the metadata database (``celery_taskmeta``, with the worker's node name: ``result_extended``).
``env`` adds to every process's environment, e.g. ``CDP_HEAVY_QUEUE`` (``cdp.runtime.heavy_task_args``) to send
the heavy tasks to a queue of their own, as docker-compose does. Every process runs in a process group of its
own, and ``stop`` kills each group, also what a process left behind in it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from support import drop_database, free_port, kill_group

from cdp.warehouse.embedded import EmbeddedServer

REPO = Path(__file__).resolve().parents[1]
AIRFLOW = Path(sys.executable).with_name("airflow")
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
EXECUTORS = ("LocalExecutor", "CeleryExecutor")
#: Airflow's ``operators.default_queue``: where a task without a ``queue`` goes.
DEFAULT_QUEUE = "default"


@dataclass(frozen=True)
class CeleryWorker:
    """One ``airflow celery worker``: Celery node ``<name>@<host>``, serving ``queues`` only."""

    name: str
    queues: tuple[str, ...]
    concurrency: int = 1

    @property
    def component(self) -> str:
        return f"celery-worker-{self.name}"


def metadata_database(server: EmbeddedServer) -> tuple[str, str]:
    """A new metadata database owned by a role of its own (same name, generated password): (name, URL)."""
    name = f"airflow_{uuid.uuid4().hex[:12]}"
    return name, server.ensure_owned_database(name, name, secrets.token_urlsafe(24))


def drop_metadata_database(server: EmbeddedServer, name: str) -> None:
    drop_database(server, name)
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


class AirflowCluster:
    def __init__(
        self,
        home: Path,
        metadata_url: str,
        connections: Mapping[str, str],
        *,
        executor: str = "LocalExecutor",
        broker_url: str | None = None,
        workers: Sequence[CeleryWorker] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        if executor not in EXECUTORS:
            raise ValueError(f"executor {executor!r}: one of {', '.join(EXECUTORS)}")
        if (executor == "CeleryExecutor") != bool(broker_url and workers):
            raise ValueError("the CeleryExecutor needs a broker_url and workers; the LocalExecutor neither")
        self.home = home
        self.metadata_url = metadata_url
        self.executor = executor
        self.broker_url = broker_url
        self.workers = tuple(workers)
        self.port = free_port()
        orm_url = metadata_url.replace("postgresql://", "postgresql+psycopg://")
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CDP_WAREHOUSE"))},
            **connections,
            **(env or {}),
            "PATH": f"{AIRFLOW.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "CDP_HOME": str(home / "cdp"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "no-plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": orm_url,
            "AIRFLOW__CORE__EXECUTOR": executor,
            "AIRFLOW__CORE__PARALLELISM": "2",
            # A busy test machine parses slowly: the default 30 s import timeout fails tasks that are fine.
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600",
            "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "600",
            # ... and answers slowly: tasks wait longer for the api-server before giving up.
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
            "AIRFLOW__WORKERS__EXECUTION_API_RETRIES": "10",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": "127.0.0.1",  # loopback only, as everything a test starts
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.port}",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            # Not the default ports: another Airflow on the machine may hold them.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        }
        if executor == "CeleryExecutor":
            self.env |= {
                "AIRFLOW__OPERATORS__DEFAULT_QUEUE": DEFAULT_QUEUE,
                "AIRFLOW__CELERY__BROKER_URL": str(broker_url),
                # Results (and so each task's worker) in the metadata database, as docker-compose has them.
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{orm_url}",
                "AIRFLOW__CELERY__EXTRA_CELERY_CONFIG": json.dumps({"result_extended": True}),
            }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        #: seconds from the start of ``start`` (``db migrate`` and ``pools``: each step's own), for a report
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 240) -> None:
        (self.home / "no-plugins").mkdir(parents=True, exist_ok=True)
        begun = time.monotonic()
        self.airflow("db", "migrate", timeout=timeout)
        self.timings["db migrate"] = time.monotonic() - begun
        # The vendor pools, as airflow-init and `make run` create them: without its pool a task stays queued.
        from cdp_sandbox.devserver import create_pools

        create_pools(self.env)
        self.timings["pools"] = time.monotonic() - begun - self.timings["db migrate"]
        for component in COMPONENTS:
            command = [str(AIRFLOW), component]
            if component == "api-server":
                command += ["--port", str(self.port)]
            self._spawn(component, command)
        for worker in self.workers:
            self._spawn_worker(worker)
        self.wait(lambda: self.query("SELECT 1 FROM serialized_dag WHERE dag_id = 'cdp_sync'"), timeout,
                  "the dag-processor did not serialise cdp_sync")  # fmt: skip
        self.timings["cdp_sync serialised"] = time.monotonic() - begun
        self.wait(self._api_up, timeout, "the api-server did not answer")
        self.timings["api-server answers"] = time.monotonic() - begun
        if self.workers:
            expected = {worker.name: sorted(worker.queues) for worker in self.workers}
            self.wait(lambda: self._by_name(self.celery_workers()) == expected, timeout,
                      f"the Celery workers {sorted(expected)} did not all answer on their queues")  # fmt: skip
            self.timings["workers answer"] = time.monotonic() - begun

    def _spawn_worker(self, worker: CeleryWorker) -> None:
        # The task logs are files in this home, which the api-server reads itself: no log server per worker.
        self._spawn(worker.component, [
            str(AIRFLOW), "celery", "worker", "--celery-hostname", f"{worker.name}@%h",
            "--queues", ",".join(worker.queues), "--concurrency", str(worker.concurrency),
            "--pid", str(self.home / f"{worker.component}.pid"), "--skip-serve-logs",
        ])  # fmt: skip

    def add_worker(self, worker: CeleryWorker, timeout: float = 240) -> None:
        """Start one more Celery worker and wait until it answers on its queues."""
        self._spawn_worker(worker)
        self.wait(lambda: self._by_name(self.celery_workers()).get(worker.name) == sorted(worker.queues), timeout,
                  f"the Celery worker {worker.name} did not answer on {sorted(worker.queues)}")  # fmt: skip

    def kill(self, component: str) -> subprocess.Popen[bytes]:
        """SIGKILL to the component's whole process group at once, with no warning (its machine lost), and
        no more watching it: the cluster goes on without it."""
        process = self.processes.pop(component)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        return process

    def _spawn(self, component: str, command: list[str]) -> None:
        log = (self.home / f"{component}.log").open("ab")
        try:
            self.processes[component] = subprocess.Popen(
                command, env=self.env, cwd=self.home, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        finally:
            log.close()  # the child has its own copy

    def celery_workers(self, timeout: float = 2) -> dict[str, list[str]]:
        """The Celery workers that answer now, by node name (``default@host``): the queues each consumes."""
        from celery import Celery

        app = Celery(broker=self.broker_url)
        try:
            replies = app.control.inspect(timeout=timeout).active_queues() or {}
        finally:
            app.close()
        return {node: sorted(queue["name"] for queue in queues) for node, queues in replies.items()}

    @staticmethod
    def _by_name(nodes: Mapping[str, list[str]]) -> dict[str, list[str]]:
        return {node.split("@", 1)[0]: queues for node, queues in nodes.items()}

    def _api_up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM to every process group, then SIGKILL to each group (also to what outlived its leader)."""
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            kill_group(process, timeout=30)

    # ------------------------------------------------------------------ helpers
    def airflow(self, *args: str, timeout: float = 180) -> str:
        result = subprocess.run(
            [str(AIRFLOW), *args], env=self.env, cwd=self.home, capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise AssertionError(
                f"airflow {' '.join(args)} failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
            )
        return result.stdout

    def query(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple]:
        with psycopg.connect(self.metadata_url, autocommit=True) as conn:
            return conn.execute(statement, params).fetchall()

    def execute(self, statement: str, params: tuple[Any, ...] = ()) -> None:
        """A write to the metadata database (only to move a deadline's time: see the deadline test)."""
        with psycopg.connect(self.metadata_url, autocommit=True) as conn:
            conn.execute(statement, params)

    def wait(self, condition: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise AssertionError(f"airflow {name} exited: {self.log_tail(name)}")
            time.sleep(1)
        raise AssertionError(f"{what} within {timeout:.0f} s\n" + "\n".join(
            f"--- {name}:\n{self.log_tail(name)}" for name in self.processes))  # fmt: skip

    def log_tail(self, component: str, chars: int = 3000) -> str:
        path = self.home / f"{component}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        rows = self.query(
            "SELECT run_id, run_type, state, data_interval_start, data_interval_end, backfill_id FROM dag_run"
            " WHERE dag_id = %s ORDER BY data_interval_end, id",
            (dag_id,),
        )
        keys = ("run_id", "run_type", "state", "data_interval_start", "data_interval_end", "backfill_id")
        return [dict(zip(keys, row, strict=True)) for row in rows]
