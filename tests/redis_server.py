"""A real Redis server for tests: the Celery broker of the Celery stack (``tests/airflow_cluster.py``).

The binary and its options are `make run EXECUTOR=celery`'s (``cdp_sandbox.broker``). It listens on 127.0.0.1
only, keeps nothing on disk, and runs in a process group of its own that ``stop`` kills, whatever state it is in.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from support import free_port, kill_group

from cdp_sandbox.broker import redis_command


class RedisServer:
    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log(self) -> Path:
        return self.folder / "redis.log"

    def start(self, timeout: float = 30) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        command = [*redis_command(self.port, self.folder), "--logfile", str(self.log)]
        self.process = subprocess.Popen(
            command,
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"redis-server exited ({self.process.returncode}): {self.log_tail()}")
            if self.command("PING") == "+PONG":
                return
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"redis-server did not answer PING within {timeout:.0f} s: {self.log_tail()}")

    def command(self, *words: str, timeout: float = 2) -> str | None:
        """One command in Redis's inline protocol; the first line of the reply, or None if nobody answers."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as conn:
                conn.sendall((" ".join(words) + "\r\n").encode())
                return conn.makefile("rb").readline().decode().rstrip("\r\n")
        except OSError:
            return None

    def stop(self, timeout: float = 10) -> None:
        if self.process is None:
            return
        kill_group(self.process, timeout)

    def log_tail(self, chars: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
