"""Airflow's metadata is in PostgreSQL, never SQLite (issue 21): in `make run`, in the suite's ``airflow_db``,
in the test clusters, and in every file that could configure it.

SQLite locked up under a backfill beside the scheduler and killed the scheduler; a test stack on SQLite would
never see that class of failure.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from airflow_cluster import AirflowCluster

from cdp_sandbox import devserver
from cdp_sandbox.processes import StackFailed

REPO = Path(__file__).resolve().parents[1]
METADATA_VARIABLE = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
# A SQLAlchemy URL of SQLite (sqlite://, sqlite+pysqlite://, sqlite+aiosqlite://), or a key naming the database
# file Airflow would create in its home.
SQLITE_URL = re.compile(r"sqlite(\+\w+)?:/|airflow\.db\b", re.IGNORECASE)
# What configures Airflow: the product, the DAGs, the local stack, the deployment, the suite and CI.
SCANNED = ("dags", "include", "plugins", "sandbox", "tests", ".ci",
           "Makefile", "Dockerfile", "docker-compose.yaml")  # fmt: skip


def _configuration_files() -> list[Path]:
    files: list[Path] = []
    for name in SCANNED:
        path = REPO / name
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files += [
                file for file in path.rglob("*")
                if file.is_file() and file.suffix in {"", ".py", ".sh", ".yaml", ".yml", ".env", ".cfg", ".toml"}
                and "__pycache__" not in file.parts
            ]  # fmt: skip
    return files


def sqlite_mentions(files: list[Path], root: Path = REPO) -> list[str]:
    """``path:line`` of every line that names a SQLite URL or Airflow's SQLite file."""
    found = []
    for file in files:
        if file == Path(__file__).resolve():
            continue
        for number, line in enumerate(file.read_text(errors="replace").splitlines(), 1):
            if SQLITE_URL.search(line):
                found.append(f"{file.relative_to(root)}:{number}: {line.strip()}")
    return found


def test_no_file_that_configures_airflow_names_sqlite() -> None:
    files = _configuration_files()

    assert len(files) > 100 and REPO / "tests" / "conftest.py" in files
    assert sqlite_mentions(files) == []


def test_the_scan_finds_a_sqlite_url(tmp_path: Path) -> None:
    stack = tmp_path / "a_stack_on_sqlite.py"
    lines = [
        f'env["{METADATA_VARIABLE}"] = "sqlite:////tmp/home/airflow.db"',
        'ORM = "sqlite+aiosqlite:///x"',
        'home = AIRFLOW_HOME / "airflow.db"',
        'fine = "postgresql+psycopg://airflow@127.0.0.1/airflow"',
    ]
    stack.write_text("\n".join(lines) + "\n")

    assert sqlite_mentions([stack], tmp_path) == [
        f"a_stack_on_sqlite.py:{number}: {line}" for number, line in enumerate(lines[:3], 1)
    ]


def test_the_suite_points_airflow_at_postgresql_before_any_test_asks_for_a_metadata_database() -> None:
    from airflow import settings

    assert os.environ[METADATA_VARIABLE].startswith("postgresql+psycopg://")
    assert settings.engine.url.get_backend_name() == "postgresql"


def test_dag_tests_run_on_a_postgresql_database_and_role_of_their_own(airflow_db: Path) -> None:
    from airflow import settings
    from sqlalchemy import text

    with settings.engine.connect() as conn:
        user, database, superuser = conn.execute(
            text(
                "SELECT current_user, current_database(), rolsuper FROM pg_roles WHERE rolname = current_user"
            )
        ).one()
        migrated = conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one()

    assert settings.engine.url.get_backend_name() == "postgresql"
    assert user == database and user.startswith("airflow_") and superuser is False
    assert migrated == 1
    assert os.environ[METADATA_VARIABLE] == settings.engine.url.render_as_string(hide_password=False)
    assert not list(airflow_db.rglob("*.db")), "no SQLite file in the suite's AIRFLOW_HOME"


def test_the_test_cluster_configures_postgresql(tmp_path: Path) -> None:
    cluster = AirflowCluster(tmp_path, "postgresql://airflow_x:secret@127.0.0.1:5432/airflow_x", {})

    assert cluster.env[METADATA_VARIABLE] == "postgresql+psycopg://airflow_x:secret@127.0.0.1:5432/airflow_x"


def test_the_local_stack_configures_postgresql_and_refuses_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    metadata = "postgresql+psycopg://airflow:secret@127.0.0.1:5432/airflow"

    environment = devserver.airflow_environment("postgresql://warehouse@127.0.0.1:5432/cdp", 8080, metadata)

    assert environment[METADATA_VARIABLE] == metadata
    with pytest.raises(StackFailed, match="PostgreSQL only"):
        devserver.airflow_environment(
            "postgresql://warehouse@127.0.0.1:5432/cdp", 8080, "sqlite:////tmp/a.db"
        )
    monkeypatch.setenv(METADATA_VARIABLE, "sqlite:////tmp/airflow.db")
    with pytest.raises(StackFailed, match="names sqlite"):
        devserver.metadata_url()
