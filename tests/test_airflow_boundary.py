"""The Airflow boundary: only ``cdp.runtime`` may import Airflow; the rest of the package imports without it.

Airflow is installed in the test environment, so its absence is simulated: a meta-path finder refuses every
``airflow`` import in a fresh interpreter, which then imports every other module of the package. Imports
inside functions are not run this way; the import-linter contract (``.importlinter``, run by ``make test``)
sees those.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BOUNDARY = "cdp.runtime"

IMPORT_ALL_WITHOUT_AIRFLOW = """
import importlib, importlib.abc, pkgutil, sys

class NoAirflow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "airflow" or name.startswith("airflow."):
            raise ModuleNotFoundError(f"No module named {name!r} (Airflow is not installed)", name=name)
        return None

sys.meta_path.insert(0, NoAirflow())
import cdp
failed = []
for module in pkgutil.walk_packages(cdp.__path__, "cdp."):
    boundary = sys.argv[1]
    if module.name == boundary or module.name.startswith(boundary + "."):
        continue
    try:
        importlib.import_module(module.name)
    except Exception as error:
        failed.append(f"{module.name}: {type(error).__name__}: {error}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_the_package_outside_the_boundary_imports_without_airflow() -> None:
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL_WITHOUT_AIRFLOW, BOUNDARY],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (
        f"modules that need Airflow outside {BOUNDARY}:\n{result.stdout}{result.stderr}"
    )


def test_the_subprocess_check_fails_when_a_module_needs_airflow(tmp_path: Path) -> None:
    """The finder really hides Airflow: a module importing it fails under the same check."""
    package = tmp_path / "probe_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "uses_airflow.py").write_text("import airflow.sdk\n")
    script = IMPORT_ALL_WITHOUT_AIRFLOW.replace("import cdp\n", "import probe_pkg as cdp\n").replace(
        '"cdp."', '"probe_pkg."'
    )
    result = subprocess.run(
        [sys.executable, "-c", script, BOUNDARY],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1
    assert "probe_pkg.uses_airflow: ModuleNotFoundError" in result.stdout
