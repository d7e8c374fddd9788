"""`make run`: the warehouse, its schema, the vendor sandbox and Airflow with the project's DAGs, on this machine.

Airflow runs as its four components (api-server, scheduler, dag-processor, triggerer), each a process this
module supervises (``cdp_sandbox.processes``): one that dies is restarted, at most three times in ten
minutes, else the whole stack stops with the component's log. Ctrl-C, SIGTERM (`make stop`) and SIGHUP
stop every process tree within seconds. Airflow's metadata lives in PostgreSQL, in its own database
``airflow`` owned by its own role ``airflow`` on the embedded server, with a password generated once and
kept in ``.cdp/airflow/secrets.json``; never in SQLite. ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` points it
elsewhere. The warehouse is the embedded PostgreSQL unless ``AIRFLOW_CONN_WAREHOUSE`` points elsewhere.

Everything a local ``airflow`` command needs is written to ``.cdp/airflow/stack.env``; ``cdp airflow …``
runs any Airflow command with it. The UI login is fixed per checkout (user ``admin``, a generated password
kept in ``.cdp/airflow/passwords.json``) and printed at start. Alerts go to the sandbox's Slack receiver
(``cdp sandbox slack`` prints what it received).

``make run EXECUTOR=celery`` (``cdp run --executor celery``) starts the production shape instead of the
LocalExecutor: Redis as the Celery broker (``cdp_sandbox.broker``), Celery's results in the metadata database,
and two supervised ``airflow celery worker``s, ``default`` and ``heavy`` (the queue ``CDP_HEAVY_QUEUE`` names,
as docker-compose has it), so the two can be watched sharing the work before deploying.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from cdp.paths import PROJECT_ROOT, state_dir
from cdp.sources.base import SourceSettings
from cdp.sources.registry import STREAMS
from cdp.warehouse import (
    PIPELINE,
    configured_url,
    migrations,
    migrations_url,
    process_environment,
    resolve_url,
)
from cdp.warehouse.embedded import default_server, port_is_free
from cdp_sandbox.broker import redis_command
from cdp_sandbox.defaults import SANDBOX_LEARNERS, SANDBOX_PORT, SANDBOX_SEED
from cdp_sandbox.generator import World
from cdp_sandbox.processes import (
    Component,
    StackFailed,
    StopRequested,
    Supervisor,
    describe,
    handle_stop_signals,
    port_owner,
    read_records,
    record_for,
    stop_sessions,
)
from cdp_sandbox.server import SLACK_WEBHOOK_PATH, sandbox_settings

UI_USER = "admin"
#: Airflow's metadata database and its role on the embedded server
METADATA_DATABASE = "airflow"
METADATA_ROLE = "airflow"
#: the address the API server listens on unless `make run HOST=…` / `cdp run --host` / CDP_API_HOST says else
DEFAULT_HOST = "127.0.0.1"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
#: `cdp run --executor`: Airflow's LocalExecutor, or the CeleryExecutor with Redis and two workers
EXECUTORS = {"local": "LocalExecutor", "celery": "CeleryExecutor"}
#: Redis's port for `make run EXECUTOR=celery` (not 6379: a Redis of the machine's own may hold that one)
REDIS_PORT = 6380
HEAVY_QUEUE = "heavy"


@dataclass(frozen=True)
class CeleryWorker:
    """One supervised ``airflow celery worker``: component ``celery-worker-<name>``, Celery node ``<name>@host``."""

    name: str
    queue: str
    concurrency: int

    @property
    def component(self) -> str:
        return f"celery-worker-{self.name}"


def celery_workers() -> tuple[CeleryWorker, ...]:
    """Airflow's default queue with a slot per core (the syncs and everything else), and the heavy queue
    with one slot (identity scoring and merging, the reconciliation: ``cdp.runtime.heavy_task_args``)."""
    return (
        CeleryWorker("default", "default", max(2, os.cpu_count() or 2)),
        CeleryWorker(HEAVY_QUEUE, HEAVY_QUEUE, 1),
    )


#: how long the API server may take to answer after its start (a busy two-core machine: minutes)
API_START_TIMEOUT = 900.0
SUPERVISOR = "supervisor"


def airflow_home() -> Path:
    home = state_dir() / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    return home


def connection_env(source: str, settings: SourceSettings) -> tuple[str, str]:
    """An ``AIRFLOW_CONN_<SOURCE>`` variable that ``cdp.runtime.source_settings`` turns back into settings."""
    spec = {
        "conn_type": "http",
        "host": settings.base_url,
        "password": settings.credential,
        "extra": dict(settings.extra),
    }
    return f"AIRFLOW_CONN_{source.upper()}", json.dumps(spec)


def slack_webhook_url(port: int = SANDBOX_PORT) -> str:
    return f"http://127.0.0.1:{port}{SLACK_WEBHOOK_PATH}"


def reference_day() -> date:
    """The day the local sandbox's world is dated from: today (UTC), or ``CDP_SANDBOX_TODAY`` (YYYY-MM-DD) for
    a world that is the same on any day."""
    given = os.environ.get("CDP_SANDBOX_TODAY")
    return date.fromisoformat(given) if given else datetime.now(UTC).date()


def sandbox_environment(port: int = SANDBOX_PORT) -> dict[str, str]:
    """Airflow connections for every source, pointing at the sandbox, ``slack_alerts`` at its receiver and
    the registration form's webhook secret (``webhook_registration``) for the intake."""
    world = World(seed=SANDBOX_SEED, learners=SANDBOX_LEARNERS, today=reference_day())
    base_url = f"http://127.0.0.1:{port}"
    environment = dict(
        connection_env(source, sandbox_settings(world, base_url, source, state_dir() / "ledger-drop"))
        for source in (*STREAMS, "certificates")  # certificates: the service phase 3 posts requests to
    )
    name, value = connection_env("webhook_registration", sandbox_settings(world, base_url, "registration"))
    environment[name] = value
    environment["AIRFLOW_CONN_SLACK_ALERTS"] = json.dumps(
        {"conn_type": "slackwebhook", "password": slack_webhook_url(port)}
    )
    return environment


def sandbox_component(port: int = SANDBOX_PORT, api_port: int | None = None) -> Component:
    """The vendor-API sandbox, its world dated from ``reference_day()`` and live (new records as the clock
    runs, the seed's planted faults, the registration form posting to the intake on ``api_port``); its output
    goes to .cdp/sandbox.log."""
    command = [sys.executable, "-m", "cdp_sandbox.server", "--port", str(port), "--seed", str(SANDBOX_SEED),
               "--learners", str(SANDBOX_LEARNERS), "--ledger-folder", str(state_dir() / "ledger-drop"),
               "--today", reference_day().isoformat(), "--live", "--planted-faults"]  # fmt: skip
    if api_port is not None:
        command += ["--registration-webhook-url", f"http://127.0.0.1:{api_port}/cdp-webhooks/registration"]
    return Component(
        "sandbox", command, state_dir() / "sandbox.log", {**os.environ, "PYTHONUNBUFFERED": "1"},
        ready=lambda: _answers("127.0.0.1", port), details={"port": port},
    )  # fmt: skip


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def local_secrets() -> dict[str, str]:
    """The metadata role's password and the secrets Airflow's components share, generated once (0600)."""
    path = airflow_home() / "secrets.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    wanted = ("metadata_password", "jwt_secret", "api_secret_key")
    if not all(stored.get(key) for key in wanted):
        stored = {key: stored.get(key) or secrets.token_urlsafe(32) for key in wanted}
        path.touch(mode=0o600)
        path.write_text(json.dumps(stored, indent=2))
    path.chmod(0o600)
    return stored


def metadata_url() -> str:
    """Airflow's metadata database as a SQLAlchemy URL (psycopg 3); never SQLite.

    ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` wins when set (it must name PostgreSQL); otherwise the database
    ``airflow`` with its own role on the embedded server, which is started when needed.
    """
    given = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
    if given:
        return postgresql_only(given)
    server = default_server()
    server.start()
    url = server.ensure_owned_database(METADATA_DATABASE, METADATA_ROLE, local_secrets()["metadata_password"])
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def postgresql_only(metadata: str) -> str:
    """``metadata``, if it names PostgreSQL: SQLite locks up under Airflow's four processes (a backfill beside
    the scheduler killed it, issue 21)."""
    if not metadata.startswith("postgresql"):
        raise StackFailed(
            f"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN names {metadata.split(':', 1)[0]}: the local stack keeps "
            "Airflow's metadata in PostgreSQL only (unset it to use the embedded server)"
        )
    return metadata


def execution_api_url(host: str, port: int) -> str:
    reachable = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host  # noqa: S104 - a comparison
    return f"http://{reachable}:{port}/execution/"


def airflow_environment(
    warehouse_url: str, port: int, metadata: str, host: str = DEFAULT_HOST
) -> dict[str, str]:
    """Environment for every Airflow process started locally.

    Tunables (parallelism, timeouts) are defaults: a variable already set in the environment wins.
    """
    home = airflow_home()
    shared = local_secrets()
    cores = os.cpu_count() or 2
    tunables = {
        # Sized to the machine: on two cores, 32 task processes at once starve the API server they call and
        # the first tries time out (httpx.ReadTimeout) with nothing in their logs.
        "AIRFLOW__CORE__PARALLELISM": str(max(2, 2 * cores)),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(max(2, cores)),
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": str(max(1, min(2, cores // 2))),
        # ... and a task waits for a busy API server instead of failing its try.
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
        "AIRFLOW__WORKERS__EXECUTION_API_RETRIES": "10",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "180",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": "8793",
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": "8794",
    }
    fixed = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgresql_only(metadata),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{UI_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": execution_api_url(host, port),
        "AIRFLOW__API__HOST": host,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
        "AIRFLOW__API__SECRET_KEY": shared["api_secret_key"],
        "AIRFLOW__API_AUTH__JWT_SECRET": shared["jwt_secret"],
        "AIRFLOW_CONN_WAREHOUSE": warehouse_url,
    }
    return {**tunables, **{k: v for k, v in os.environ.items() if k in tunables}, **fixed}


def celery_environment(metadata: str, redis_port: int) -> dict[str, str]:
    """What the CeleryExecutor adds for every component: the broker, the results beside Airflow's metadata
    (with each task's worker: ``result_extended``), and the heavy queue's name."""
    from cdp.runtime import HEAVY_QUEUE_ENV

    return {
        "AIRFLOW__CORE__EXECUTOR": EXECUTORS["celery"],
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": "default",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{postgresql_only(metadata)}",
        "AIRFLOW__CELERY__EXTRA_CELERY_CONFIG": json.dumps({"result_extended": True}),
        HEAVY_QUEUE_ENV: HEAVY_QUEUE,
    }


def redis_component(port: int) -> Component:
    folder = state_dir() / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    return Component(
        "redis", redis_command(port, folder), state_dir() / "redis.log", {**os.environ},
        ready=lambda: _answers("127.0.0.1", port), details={"port": port},
    )  # fmt: skip


def celery_worker_components(environment: Mapping[str, str]) -> list[Component]:
    """The workers; no log server each (two on one machine would want one port): the task logs are files in
    ``.cdp/airflow/logs``, which the API server reads itself."""
    logs = airflow_home() / "logs"
    return [
        Component(
            worker.component,
            [
                airflow_executable(),
                "celery",
                "worker",
                "--celery-hostname",
                f"{worker.name}@%h",
                "--queues",
                worker.queue,
                "--concurrency",
                str(worker.concurrency),
                "--skip-serve-logs",
                "--pid",
                str(airflow_home() / f"{worker.component}.pid"),
            ],
            logs / f"{worker.component}.log",
            environment,
        )  # fmt: skip
        for worker in celery_workers()
    ]


def ui_password() -> str:
    """The local UI password, generated once per checkout."""
    path = airflow_home() / "passwords.json"
    if path.exists():
        return str(json.loads(path.read_text())[UI_USER])
    password = secrets.token_urlsafe(12)
    path.write_text(json.dumps({UI_USER: password}))
    path.chmod(0o600)
    return password


def local_environment(
    warehouse_url: str,
    port: int,
    sandbox_port: int = SANDBOX_PORT,
    *,
    metadata: str | None = None,
    host: str = DEFAULT_HOST,
) -> dict[str, str]:
    """The whole environment of every Airflow component `make run` starts (and of `cdp airflow`)."""
    environment = {
        **os.environ,
        **sandbox_environment(sandbox_port),
        **airflow_environment(warehouse_url, port, metadata or metadata_url(), host),
        "CDP_DATA_HEALTH_DIR": os.environ.get("CDP_DATA_HEALTH_DIR") or str(state_dir() / "data-health"),
        "PYTHONUNBUFFERED": "1",
    }
    # Airflow's components start `airflow …` found on PATH for some work: make that the project's own.
    venv_bin = str(Path(sys.executable).parent)
    environment["PATH"] = venv_bin + os.pathsep + environment.get("PATH", "")
    return environment


def stack_env_path() -> Path:
    return airflow_home() / "stack.env"


def write_stack_env(environment: Mapping[str, str]) -> Path:
    """What `cdp airflow` (or `set -a; . .cdp/airflow/stack.env`) needs to reach the running stack (0600)."""
    kept = {k: v for k, v in environment.items() if k.startswith(("AIRFLOW", "CDP_")) and "\n" not in v}
    path = stack_env_path()
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("".join(f"{key}={shlex.quote(value)}\n" for key, value in sorted(kept.items())))
    return path


def read_stack_env() -> dict[str, str]:
    path = stack_env_path()
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: start the local stack once with `make run`")
    environment = {}
    for line in path.read_text().splitlines():
        if line.strip():
            key, _, value = shlex.split(line)[0].partition("=")
            environment[key] = value
    return environment


def airflow_executable() -> str:
    venv_bin = str(Path(sys.executable).parent)
    return shutil.which("airflow", path=venv_bin) or "airflow"


def pool_definitions() -> dict[str, dict[str, object]]:
    """Every vendor pool (``cdp.runtime.POOLS``) in the file format `airflow pools import` reads."""
    from cdp.runtime import POOLS

    return {pool.name: {"slots": pool.slots, "description": pool.description} for pool in POOLS}


def create_pools(environment: dict[str, str]) -> list[str]:
    """Create the vendor pools missing from the (migrated) Airflow that ``environment`` points at.

    Only missing ones: slots an operator changed with `airflow pools set` stay as they are. Without its pool a
    task would stay queued for ever. Returns the names created.
    """
    airflow = airflow_executable()

    def run(*args: str) -> str:
        # Its own timeout: on a loaded machine a hung CLI must fail this step, not the whole run or test.
        result = subprocess.run(
            [airflow, *args], env=environment, capture_output=True, text=True, check=False, timeout=300
        )
        if result.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed: {result.stderr[-2000:]}")
        return result.stdout

    listed = run("pools", "list", "--output", "json")
    existing = {pool["pool"] for pool in json.loads(listed[listed.index("[") :])}
    missing = {name: pool for name, pool in pool_definitions().items() if name not in existing}
    if missing:
        path = Path(environment["AIRFLOW_HOME"]) / "cdp-pools.json"
        path.write_text(json.dumps(missing, indent=2))
        run("pools", "import", str(path))
    return sorted(missing)


def prepare_airflow(environment: dict[str, str]) -> None:
    """Airflow's metadata schema and the vendor pools, before its components start."""
    result = subprocess.run(
        [airflow_executable(), "db", "migrate"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed: {result.stderr[-2000:]}")
    create_pools(environment)


def airflow_components(environment: Mapping[str, str], host: str, port: int) -> list[Component]:
    airflow = airflow_executable()
    logs = airflow_home() / "logs"

    def api_ready() -> bool:
        url = f"{execution_api_url(host, port).removesuffix('/execution/')}/api/v2/monitor/health"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    components = []
    for name in COMPONENTS:
        command = [airflow, name]
        if name == "api-server":
            command += ["--host", host, "--port", str(port)]
        components.append(
            Component(
                name,
                command,
                logs / f"{name}.log",
                environment,
                ready=api_ready if name == "api-server" else None,
                details={"port": port, "host": host} if name == "api-server" else {},
            )  # fmt: skip
        )
    return components


# ---------------------------------------------------------------- what is in the way at start
def previous_run_problems() -> list[str]:
    """Processes of an earlier run that are still alive; pid files of dead ones are removed silently."""
    problems = []
    for record in read_records():
        if record.name == SUPERVISOR and record.leader_alive():
            problems.append(
                f"`make run` is already running (pid {record.pid}, started "
                f"{time.strftime('%H:%M:%S', time.localtime(record.started))}): use it, or stop it with "
                "Ctrl-C in its terminal or `make stop`"
            )
            continue
        members = record.members()
        if members:
            problems.append(
                f"{record.name} of an earlier run is still running ({', '.join(describe(p) for p in members[:3])}"
                f"{', …' if len(members) > 3 else ''}): `make stop` stops it"
            )
        else:
            record.remove()  # dead: nothing to report, nothing to stop
    return problems


def busy_ports(ports: Mapping[str, tuple[str, int]]) -> list[str]:
    """A sentence for each port that something else listens on, naming the process only if it is alive."""
    problems = []
    for what, (host, port) in ports.items():
        if _port_free(host, port):
            continue
        owner = port_owner(port)
        who = describe(owner) if owner else "a process this user cannot see"
        problems.append(f"port {port} ({what}) is in use by {who}")
    return problems


def _port_free(host: str, port: int) -> bool:
    if host in {"127.0.0.1", "localhost"}:
        return port_is_free(port)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as port_is_free: TIME_WAIT is not busy
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def check_start(
    host: str, port: int, sandbox_port: int, environment: Mapping[str, str], redis_port: int | None = None
) -> None:
    problems = previous_run_problems()
    if problems:
        raise StackFailed("cannot start:\n" + "\n".join(f"  - {p}" for p in problems))
    ports = {
        "Airflow's API server and UI; `make run PORT=8081` to use another": (host, port),
        "the vendor sandbox; `make run SANDBOX_PORT=8766` to use another": ("127.0.0.1", sandbox_port),
        "Airflow's worker log server; set AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": (
            "127.0.0.1",
            int(environment.get("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", 8793)),
        ),
        "Airflow's triggerer log server; set AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": (
            "127.0.0.1",
            int(environment.get("AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT", 8794)),
        ),
    }
    if redis_port is not None:
        ports["Redis, the Celery broker; `make run REDIS_PORT=6381` to use another"] = (
            "127.0.0.1",
            redis_port,
        )
    problems = busy_ports(ports)
    if problems:
        raise StackFailed("cannot start:\n" + "\n".join(f"  - {p}" for p in problems))


# ---------------------------------------------------------------- the stack
def _say(text: str) -> None:
    print(text, flush=True)


def run_local(
    port: int = 8080,
    host: str | None = None,
    sandbox_port: int = SANDBOX_PORT,
    *,
    executor: str = "local",
    redis_port: int = REDIS_PORT,
) -> int:
    """Start everything, print how to log in, supervise until Ctrl-C / SIGTERM, then stop every process."""
    if executor not in EXECUTORS:
        print(f"error: executor {executor!r}: one of {', '.join(EXECUTORS)}", file=sys.stderr, flush=True)
        return 2
    celery = executor == "celery"
    host = host or os.environ.get("CDP_API_HOST") or DEFAULT_HOST
    handle_stop_signals()
    supervisor = Supervisor(say=_say)
    began = time.monotonic()
    me = None
    try:
        check_start(host, port, sandbox_port, {**os.environ}, redis_port if celery else None)
        me = record_for(SUPERVISOR, psutil.Process(), port=port, sandbox_port=sandbox_port, host=host)
        _say("  starting: warehouse, Airflow's metadata database, sandbox, Airflow (about a minute) …")
        owner_url = migrations_url()  # the superuser: migrations only, never in Airflow's environment
        migrations.upgrade(owner_url)
        # the pipeline's and the webhook intake's own logins on the embedded server (a configured one: as given)
        processes = process_environment() if configured_url() is None else {}
        url = processes.get("AIRFLOW_CONN_WAREHOUSE") or resolve_url(purpose=PIPELINE)
        supervisor.start(sandbox_component(sandbox_port, port))
        supervisor.wait_ready("sandbox", 120)
        environment = {**local_environment(url, port, sandbox_port, host=host), **processes}
        if celery:
            environment |= celery_environment(environment["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], redis_port)
            supervisor.start(redis_component(redis_port))
            supervisor.wait_ready("redis", 60)
        write_stack_env(environment)
        password = ui_password()
        prepare_airflow(environment)
        api, *others = airflow_components(environment, host, port)
        supervisor.start(api)  # first: every task talks to it through the execution API
        supervisor.wait_ready("api-server", API_START_TIMEOUT)
        for component in [*others, *(celery_worker_components(environment) if celery else [])]:
            supervisor.start(component)
        _say(banner(port, host, sandbox_port, password, owner_url, round(time.monotonic() - began),
                    redis_port if celery else None))  # fmt: skip
        while True:
            time.sleep(1)
            supervisor.check()
    except (KeyboardInterrupt, StopRequested) as request:
        code, why = 0, "Ctrl-C" if isinstance(request, KeyboardInterrupt) else str(request)
    except StackFailed as failure:
        code, why = 1, None
        print(f"\nerror: {failure}", file=sys.stderr, flush=True)
    except Exception as failure:
        code, why = 1, None
        print(f"\nerror: {type(failure).__name__}: {failure}", file=sys.stderr, flush=True)
    stopping = time.monotonic()
    if why:
        _say(f"\n  {why}: stopping Airflow and the sandbox …")
    try:
        count = supervisor.stop()
    except KeyboardInterrupt:  # a second Ctrl-C: no more grace
        count = supervisor.stop(grace=0)
    if me:
        me.remove()
    if supervisor.components:
        _say(
            f"  stopped {count} processes in {time.monotonic() - stopping:.1f} s; the warehouse keeps running "
            "(`make stop` stops it too)"
        )
    return code


def banner(
    port: int,
    host: str,
    sandbox_port: int,
    password: str,
    url: str,
    seconds: int,
    redis_port: int | None = None,
) -> str:
    exposed = (
        "" if host in {"127.0.0.1", "localhost", "::1"} else f" (listening on {host}: reachable from others)"
    )
    logs = airflow_home() / "logs"
    components = list(COMPONENTS)
    if redis_port is None:
        executor = "LocalExecutor (`make run EXECUTOR=celery` for Redis and two Celery workers)"
    else:
        workers = celery_workers()
        components += [worker.component for worker in workers]
        executor = (
            f"CeleryExecutor, Redis on 127.0.0.1:{redis_port} (log in .cdp/redis.log), workers "
            + ", ".join(
                f"{w.name}@ (queue {w.queue}, {w.concurrency} slot{'s' * (w.concurrency > 1)})"
                for w in workers
            )
        )
    return (
        "\n"
        f"  Airflow UI:  http://localhost:{port}{exposed}   (ready after {seconds} s)\n"
        f"  login:       {UI_USER} / {password}\n"
        f"  warehouse:   schema {migrations.current_revision(url)}; `.venv/bin/cdp warehouse url` prints its address\n"
        f"  metadata:    PostgreSQL database {METADATA_DATABASE!r} (role {METADATA_ROLE!r}) on the embedded server\n"
        f"  airflow CLI: .venv/bin/cdp airflow <command>   e.g. `.venv/bin/cdp airflow dags list`\n"
        f"  sandbox:     vendor APIs on http://127.0.0.1:{sandbox_port}, log in .cdp/sandbox.log\n"
        f"  alerts:      Slack messages go to the sandbox: `.venv/bin/cdp sandbox slack` prints them\n"
        f"  pools:       {', '.join(pool_definitions())} (one per vendor API)\n"
        f"  data health: http://localhost:{port}/cdp-data-health/ (in the UI: Browse -> Data health)\n"
        f"  executor:    {executor}\n"
        f"  logs:        {logs}/<component>.log ({', '.join(components)})\n"
        "  stop:        Ctrl-C here, or `make stop` from anywhere (also stops the warehouse)\n"
    )


# ---------------------------------------------------------------- make stop
def stop_all(*, warehouse: bool = True) -> list[str]:
    """Stop a running `make run` and every leftover of a crashed one (from the pid files), then the warehouse."""
    said = []
    records = read_records()
    supervisor = next((r for r in records if r.name == SUPERVISOR), None)
    if supervisor and supervisor.leader_alive():
        said.append(f"stopping `make run` (pid {supervisor.pid})")
        try:
            process = psutil.Process(supervisor.pid)
            process.terminate()
            process.wait(timeout=30)
        except psutil.TimeoutExpired:
            said.append("it did not stop within 30 s: killing what it started")
        except psutil.Error:
            pass
    leftovers = [r for r in read_records() if r.name != SUPERVISOR]
    for process in stop_sessions(leftovers):
        said.append(f"stopped {describe(process)}")
    for record in read_records():
        record.remove()
    server = default_server()
    if warehouse and server.is_running():  # the warehouse, or only Airflow's metadata when one is configured
        server.stop()
        said.append(f"stopped the embedded PostgreSQL in {server.root}")
    return said


# ---------------------------------------------------------------- cdp airflow / cdp sandbox slack
def airflow_command_environment() -> dict[str, str]:
    """This process's environment plus the local stack's (``.cdp/airflow/stack.env``)."""
    stack = read_stack_env()
    metadata = urlsplit(stack.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", ""))
    if metadata.hostname and metadata.port and not _answers(metadata.hostname, metadata.port):
        raise StackFailed(
            f"Airflow's metadata database ({metadata.hostname}:{metadata.port}) does not answer: start the local "
            "stack with `make run` (or only the embedded PostgreSQL with `.venv/bin/cdp warehouse up`)"
        )
    venv_bin = str(Path(sys.executable).parent)
    return {**os.environ, **stack, "PATH": venv_bin + os.pathsep + os.environ.get("PATH", "")}


def sandbox_port_in_use() -> int:
    """The port of the sandbox `make run` started (its pid file), else the default."""
    for record in read_records():
        if record.name == "sandbox" and record.leader_alive():
            return int(record.details.get("port", SANDBOX_PORT))
    return SANDBOX_PORT


def slack_messages(port: int) -> list[dict[str, object]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_sandbox/slack", timeout=10) as response:
        return list(json.loads(response.read())["messages"])


def clear_slack_messages(port: int) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/_sandbox/slack", method="DELETE")
    with urllib.request.urlopen(request, timeout=10):
        pass


def message_text(payload: Mapping[str, object]) -> str:
    """The text of a Slack message: ``text``, else the text of its blocks."""
    if payload.get("text"):
        return str(payload["text"])
    parts = []
    for block in payload.get("blocks") or []:
        if isinstance(block, dict):
            text = block.get("text")
            parts.append(str(text.get("text", "")) if isinstance(text, dict) else str(text or ""))
    return "\n".join(part for part in parts if part)
