"""DAG parameters that name files, checked before a task reads or writes anything.

A run's parameters are typed by whoever triggers it. A path outside the configured folders
(``cdp.paths.import_folders`` / ``report_folders``: symlinks and ``..`` resolved first) fails the task at
once with the reason, without retries: retrying cannot make the path allowed.
"""

from __future__ import annotations

from pathlib import Path

from cdp.paths import PathNotAllowed, import_path, report_path


def _refused(error: PathNotAllowed) -> Exception:
    from airflow.sdk.exceptions import AirflowFailException

    return AirflowFailException(f"{error} (an operator allows a folder by adding it to the setting)")


def import_param(value: str | Path, *, parameter: str) -> Path:
    """The file or folder a parameter names for reading, if inside the import folders; else the task fails."""
    try:
        return import_path(value, parameter=parameter)
    except PathNotAllowed as error:
        raise _refused(error) from error


def report_param(value: str | Path, *, parameter: str) -> Path:
    """The folder a parameter names for reports, if inside the report folders; else the task fails."""
    try:
        return report_path(value, parameter=parameter)
    except PathNotAllowed as error:
        raise _refused(error) from error
