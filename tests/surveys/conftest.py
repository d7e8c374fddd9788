"""The survey tests' shared builder of completers (``survey_world``)."""

from __future__ import annotations

import sys
from pathlib import Path

# The suite imports test modules with importlib (no package): make the shared builder importable.
sys.path.insert(0, str(Path(__file__).parent))
