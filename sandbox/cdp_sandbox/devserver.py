"""`make run`: the warehouse, its schema and Airflow standalone with the project's DAGs, on this machine.

Airflow's own state (SQLite metadata, logs, the login) lives in ``.cdp/airflow``; the warehouse is the
embedded PostgreSQL unless ``AIRFLOW_CONN_WAREHOUSE`` points elsewhere. The UI login is fixed per checkout
(user ``admin``, a generated password kept in ``.cdp/airflow/passwords.json``) and printed at start.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from cdp.paths import PROJECT_ROOT, state_dir
from cdp.sources.base import SourceSettings
from cdp.sources.registry import STREAMS
from cdp.warehouse import configured_url, migrations, resolve_url
from cdp_sandbox.defaults import SANDBOX_LEARNERS, SANDBOX_PORT, SANDBOX_SEED
from cdp_sandbox.generator import World
from cdp_sandbox.server import sandbox_settings

UI_USER = "admin"


def connection_env(source: str, settings: SourceSettings) -> tuple[str, str]:
    """An ``AIRFLOW_CONN_<SOURCE>`` variable that ``cdp.runtime.source_settings`` turns back into settings."""
    spec = {
        "conn_type": "http",
        "host": settings.base_url,
        "password": settings.credential,
        "extra": dict(settings.extra),
    }
    return f"AIRFLOW_CONN_{source.upper()}", json.dumps(spec)


def sandbox_environment(port: int = SANDBOX_PORT) -> dict[str, str]:
    """Airflow connections for every source, pointing at the sandbox started by ``start_sandbox``."""
    world = World(seed=SANDBOX_SEED, learners=SANDBOX_LEARNERS)
    base_url = f"http://127.0.0.1:{port}"
    return dict(
        connection_env(source, sandbox_settings(world, base_url, source, state_dir() / "ledger-drop"))
        for source in (*STREAMS, "certificates")  # certificates: the service phase 3 posts requests to
    )


def start_sandbox(port: int = SANDBOX_PORT) -> subprocess.Popen[bytes]:
    """The vendor-API sandbox as a background process; its output goes to .cdp/sandbox.log."""
    log_file = (state_dir() / "sandbox.log").open("ab")
    command = [sys.executable, "-m", "cdp_sandbox.server", "--port", str(port), "--seed", str(SANDBOX_SEED),
               "--learners", str(SANDBOX_LEARNERS), "--ledger-folder", str(state_dir() / "ledger-drop")]  # fmt: skip
    process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the sandbox exited with {process.returncode}; see .cdp/sandbox.log"
                ) from None
            time.sleep(0.2)
    raise RuntimeError("the sandbox did not start within 60 s; see .cdp/sandbox.log")


def airflow_environment(warehouse_url: str, port: int) -> dict[str, str]:
    """Environment for every Airflow process started locally."""
    home = state_dir() / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{UI_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
        "AIRFLOW_CONN_WAREHOUSE": warehouse_url,
    }


def ui_password() -> str:
    """The local UI password, generated once per checkout."""
    path = state_dir() / "airflow" / "passwords.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return str(json.loads(path.read_text())[UI_USER])
    password = secrets.token_urlsafe(12)
    path.write_text(json.dumps({UI_USER: password}))
    path.chmod(0o600)
    return password


def local_environment(warehouse_url: str, port: int, sandbox_port: int = SANDBOX_PORT) -> dict[str, str]:
    """The whole environment `airflow standalone` gets from `make run` (the browser test uses it too)."""
    environment = {
        **os.environ,
        **sandbox_environment(sandbox_port),
        **airflow_environment(warehouse_url, port),
        "CDP_DATA_HEALTH_DIR": os.environ.get("CDP_DATA_HEALTH_DIR") or str(state_dir() / "data-health"),
    }
    # Standalone starts its components as `airflow …` found on PATH: make that the project's own.
    venv_bin = str(Path(sys.executable).parent)
    environment["PATH"] = venv_bin + os.pathsep + environment.get("PATH", "")
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
        result = subprocess.run(
            [airflow, *args], env=environment, capture_output=True, text=True, check=False
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
    """Airflow's metadata schema and the vendor pools, before `airflow standalone` starts its components."""
    result = subprocess.run(
        [airflow_executable(), "db", "migrate"], env=environment, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed: {result.stderr[-2000:]}")
    create_pools(environment)


def run_local(port: int = 8080) -> int:
    """Prepare everything, print how to log in, then hand the terminal to `airflow standalone`."""
    url = resolve_url(start_embedded=configured_url() is None)
    migrations.upgrade(url)
    sandbox = start_sandbox()
    environment = local_environment(url, port)
    password = ui_password()
    prepare_airflow(environment)
    airflow = airflow_executable()
    print(
        "\n"
        f"  Airflow UI:  http://localhost:{port}\n"
        f"  login:       {UI_USER} / {password}\n"
        f"  warehouse:   schema {migrations.current_revision(url)}; `.venv/bin/cdp warehouse url` prints its address\n"
        f"  sandbox:     vendor APIs on http://127.0.0.1:{SANDBOX_PORT} (pid {sandbox.pid}), log in .cdp/sandbox.log\n"
        f"  pools:       {', '.join(pool_definitions())} (one per vendor API; `airflow pools list`)\n"
        f"  data health: http://localhost:{port}/cdp-data-health/ (in the UI: Browse -> Data health)\n"
        "  stop:        Ctrl-C (the warehouse keeps running: `.venv/bin/cdp warehouse down`)\n",
        flush=True,
    )
    os.execve(airflow, [airflow, "standalone"], environment)
    return 0  # not reached
