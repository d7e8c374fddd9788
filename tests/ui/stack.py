"""The local stack as `make run` starts it (warehouse, sandbox, `airflow standalone`), on free ports.

Used by the browser test; everything lives in the test session's temporary CDP_HOME / AIRFLOW_HOME.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from support import free_port

from cdp.warehouse import migrations
from cdp_sandbox import devserver


@dataclass
class Stack:
    base_url: str
    user: str
    password: str
    airflow: subprocess.Popen[bytes]
    sandbox: subprocess.Popen[bytes]
    log_path: Path
    data_health_dir: Path

    def api(self, method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
        request = urllib.request.Request(
            self.base_url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Content-Type": "application/json",
                **({"Authorization": f"Bearer {token}"} if token else {}),
            },
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read() or b"{}")

    def poll(self, path: str, token: str) -> dict | None:
        """A GET that a busy API server may answer late: None instead of an error, to be asked again."""
        try:
            return self.api("GET", path, token=token)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None

    def token(self) -> str:
        return self.api("POST", "/auth/token", {"username": self.user, "password": self.password})[
            "access_token"
        ]

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        for process in (self.airflow, self.sandbox):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in (self.airflow, self.sandbox):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def start(warehouse_url: str, work: Path, *, timeout: float = 300) -> Stack:
    """Migrate, start the sandbox and `airflow standalone`; return once the API server answers."""
    migrations.upgrade(warehouse_url)
    port, sandbox_port = free_port(), free_port()
    sandbox = devserver.start_sandbox(sandbox_port)
    environment = devserver.local_environment(warehouse_url, port, sandbox_port)
    # One difference from `make run`: the scheduler creates no scheduled runs (manual ones still run), so
    # on a two-core machine every DAG's first scheduled run does not compete with the run the test watches.
    environment["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] = "False"
    environment["AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL"] = "5"
    environment["AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL"] = "5"
    environment["PYTHONUNBUFFERED"] = "1"
    # A busy machine answers the execution API slowly: the default 5 s timeout fails tasks before they start.
    environment["AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT"] = "120"
    environment["AIRFLOW__WORKERS__EXECUTION_API_RETRIES"] = "10"
    # Free ports for the log servers too, so that parallel stacks on one machine do not collide.
    environment["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(free_port())
    environment["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] = str(free_port())
    password = devserver.ui_password()
    devserver.prepare_airflow(environment)  # Airflow's schema and the vendor pools, as `make run` does
    log_path = work / "airflow-standalone.log"
    airflow = subprocess.Popen(
        [devserver.airflow_executable(), "standalone"],
        env=environment,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    stack = Stack(
        f"http://127.0.0.1:{port}", devserver.UI_USER, password, airflow, sandbox, log_path,
        Path(environment["CDP_DATA_HEALTH_DIR"]),
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if airflow.poll() is not None:
            stack.stop()
            raise RuntimeError(f"airflow standalone exited with {airflow.returncode}:\n{stack.log_tail()}")
        try:
            stack.token()
            return stack
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(1)
    stack.stop()
    raise RuntimeError(f"the Airflow API server did not answer within {timeout:.0f} s:\n{stack.log_tail()}")
