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


# --- Folders a DAG parameter may name. A parameter that names a file (a legacy sheet, an export folder, a
# reports folder) is typed by whoever triggers the DAG; without a check it reads any file the worker can read
# (Airflow's own config, with its secret_key, landed in raw once) or writes anywhere. The allowed folders are
# deployment settings (environment of the Airflow processes: docker-compose.yaml, `make run`), not Airflow
# Variables, because a UI user who may trigger a DAG may often also edit Variables.
IMPORT_FOLDERS_SETTING = "CDP_IMPORT_FOLDERS"
REPORT_FOLDERS_SETTING = "CDP_REPORT_FOLDERS"


class PathNotAllowed(ValueError):
    """A path names something outside the folders configured for it (after resolving symlinks and ``..``)."""


def _folders(setting: str, default: tuple[Path, ...]) -> tuple[Path, ...]:
    value = os.environ.get(setting, "")
    entries = [entry.strip() for entry in value.split(os.pathsep) if entry.strip()]
    if not entries:
        return tuple(path.resolve() for path in default)
    relative = [entry for entry in entries if not Path(entry).is_absolute()]
    if relative:
        raise PathNotAllowed(f"{setting} must list absolute folders; {relative} are not")
    return tuple(Path(entry).resolve() for entry in entries)


def import_folders() -> tuple[Path, ...]:
    """Folders DAG parameters may read files from: ``CDP_IMPORT_FOLDERS`` (``os.pathsep``-separated), else
    ``.cdp/imports`` and ``.cdp/legacy-exports``."""
    return _folders(IMPORT_FOLDERS_SETTING, (state_dir() / "imports", state_dir() / "legacy-exports"))


def report_folders() -> tuple[Path, ...]:
    """Folders DAG parameters may write reports to: ``CDP_REPORT_FOLDERS``, else ``.cdp/reports``."""
    return _folders(REPORT_FOLDERS_SETTING, (state_dir() / "reports",))


def path_within(value: str | Path, folders: tuple[Path, ...], *, parameter: str, setting: str = "") -> Path:
    """``value`` resolved (symlinks followed, ``..`` removed), if it lies in one of ``folders``; else a clear
    error that names the parameter and the allowed folders. Nothing is opened or read here."""
    text = str(value)
    if not text.strip() or "\x00" in text:
        raise PathNotAllowed(f"parameter {parameter!r}: {text!r} is not a path")
    candidate = Path(text).expanduser()
    if not candidate.is_absolute():
        raise PathNotAllowed(
            f"parameter {parameter!r}: {text!r} is relative; give an absolute path inside "
            + ", ".join(str(folder) for folder in folders)
        )
    resolved = candidate.resolve(strict=False)
    for folder in folders:
        if resolved.is_relative_to(folder):
            return resolved
    where = f" (the {setting} setting)" if setting else ""
    raise PathNotAllowed(
        f"parameter {parameter!r}: {text!r} is outside the allowed folders "
        + ", ".join(str(folder) for folder in folders)
        + where
        + ("" if str(resolved) == text else f"; it resolves to {resolved}")
    )


def import_path(value: str | Path, *, parameter: str) -> Path:
    """A file or folder a DAG parameter names for reading, checked against ``import_folders()``."""
    return path_within(value, import_folders(), parameter=parameter, setting=IMPORT_FOLDERS_SETTING)


def report_path(value: str | Path, *, parameter: str) -> Path:
    """A folder a DAG parameter names for writing reports, checked against ``report_folders()``."""
    return path_within(value, report_folders(), parameter=parameter, setting=REPORT_FOLDERS_SETTING)
