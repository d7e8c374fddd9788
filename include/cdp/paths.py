"""Where the project's files and its local state live.

The package is installed editable from the repository, so the repository root is found from this file.
``CDP_HOME`` moves the local state (embedded warehouse, audit anchors, reports) elsewhere, which the test
suite uses to keep its own servers apart from a developer's.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SQL_DIR = Path(os.environ.get("CDP_SQL_DIR", PROJECT_ROOT / "sql"))


def state_dir() -> Path:
    """The ignored folder that holds local state (``.cdp/`` in the repository unless CDP_HOME says else)."""
    path = Path(os.environ.get("CDP_HOME", PROJECT_ROOT / ".cdp"))
    path.mkdir(parents=True, exist_ok=True)
    return path
