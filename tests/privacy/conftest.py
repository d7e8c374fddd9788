"""The privacy tests' shared seed helpers (their logins come from the suite's `logins` fixture)."""

from __future__ import annotations

import sys
from pathlib import Path

# The suite imports test modules with importlib (no package): make the shared seed helpers importable.
sys.path.insert(0, str(Path(__file__).parent))
