"""The local stack exactly as `make run` starts it (`cdp run`: warehouse, Airflow's metadata database in
PostgreSQL, the sandbox, the four supervised Airflow components), on free ports, with a CDP_HOME of its own.

Used by the browser test (tests/ui/test_airflow_ui.py), which walks a newcomer's first hour and the operator's
checks on one stack. The warehouse is a database of the suite's PostgreSQL server (``AIRFLOW_CONN_WAREHOUSE``);
Airflow's metadata lives where `make run` puts it, in the database ``airflow`` of the embedded server under this
stack's CDP_HOME. ``stop`` sends SIGINT to the
process group, as Ctrl-C in a terminal does, then runs `cdp stop` for the embedded server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from support import free_port

from cdp.warehouse import migrations
from cdp_sandbox import devserver

CDP = Path(sys.executable).with_name("cdp")


@dataclass
class Stack:
    base_url: str
    user: str
    password: str
    process: subprocess.Popen[bytes]
    home: Path
    port: int
    sandbox_port: int
    environment: dict[str, str]
    log_path: Path
    #: time.monotonic() when `cdp run` was started, and seconds from then until the API server answered a login
    started_at: float = 0.0
    answered_after: float = 0.0

    @property
    def data_health_dir(self) -> Path:
        return self.home / "data-health"

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

    def cdp(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """A `cdp …` command run as a person would beside this stack (same CDP_HOME)."""
        return subprocess.run(
            [str(CDP), *args],
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def log_tail(self, lines: int = 60) -> str:
        parts = [self.log_path.read_text(errors="replace")]
        workers = [worker.component for worker in devserver.celery_workers()]
        for component in (*devserver.COMPONENTS, *workers):
            path = self.home / "airflow" / "logs" / f"{component}.log"
            if path.exists():
                parts.append(f"--- {component}:\n" + path.read_text(errors="replace"))
        return "\n".join("\n".join(part.splitlines()[-lines:]) for part in parts)

    def interrupt(self, timeout: float = 60) -> float:
        """Ctrl-C as a terminal sends it (SIGINT to the process group); seconds until `cdp run` exited."""
        began = time.monotonic()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
                raise
        return time.monotonic() - began

    def stop(self) -> None:
        try:
            self.interrupt()
        finally:
            self.cdp("stop", timeout=120)  # leftovers, if any, and the embedded server


def start(warehouse_url: str, work: Path, *, timeout: float = 900, executor: str = "local") -> Stack:
    """Migrate the warehouse, run `cdp run` on free ports; return once the API server answers a login.
    ``executor="celery"`` is `make run EXECUTOR=celery`: Redis on a free port and two Celery workers."""
    migrations.upgrade(warehouse_url)
    port, sandbox_port = free_port(), free_port()
    home = work / "cdp-home"
    home.mkdir(parents=True, exist_ok=True)
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CDP_"))},
        "CDP_HOME": str(home),
        "AIRFLOW_CONN_WAREHOUSE": warehouse_url,
        # One difference from `make run`: the scheduler creates no scheduled runs (manual ones still run), so
        # on a two-core machine every DAG's first scheduled run does not compete with the runs a test watches.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        # Free ports for the log servers too, so that parallel stacks on one machine do not collide.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "PYTHONUNBUFFERED": "1",
    }
    log_path = work / "cdp-run.log"
    started_at = time.monotonic()
    process = subprocess.Popen(
        [str(CDP), "run", "--port", str(port), "--sandbox-port", str(sandbox_port), "--executor", executor,
         "--redis-port", str(free_port())],
        env=environment, stdout=log_path.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    stack = Stack(
        f"http://127.0.0.1:{port}", devserver.UI_USER, "", process, home, port, sandbox_port, environment,
        log_path, started_at,
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stack.cdp("stop", timeout=120)
            raise RuntimeError(f"cdp run exited with {process.returncode}:\n{stack.log_tail()}")
        if "Airflow UI:" in log_path.read_text(errors="replace"):  # the banner: every component started
            passwords = json.loads((home / "airflow" / "passwords.json").read_text())
            stack.password = passwords[devserver.UI_USER]
            try:
                stack.token()
                stack.answered_after = time.monotonic() - started_at
                return stack
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
        time.sleep(1)
    stack.stop()
    raise RuntimeError(f"the local stack did not answer within {timeout:.0f} s:\n{stack.log_tail()}")
