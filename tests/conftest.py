"""Test-suite wiring: a real PostgreSQL server started by the suite, and an isolated Airflow home.

The environment is set before anything imports Airflow or the package, so tests never touch a developer's
``.cdp/`` state, a configured production warehouse, or ``~/airflow``. Under pytest-xdist every worker
starts its own server (about a second). Airflow's metadata lives in PostgreSQL too, never in SQLite
(``airflow_db``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="cdp-tests-"))
os.environ["CDP_HOME"] = str(_SESSION_DIR / "state")
os.environ["AIRFLOW_HOME"] = str(_SESSION_DIR / "airflow")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parents[1] / "dags")
# Never SQLite (issue 21): until ``airflow_db`` gives Airflow a database on the suite's server, its metadata
# points at a port nothing listens on, so a test that reaches Airflow's metadata without that fixture fails
# with "connection refused" instead of quietly writing a SQLite file in AIRFLOW_HOME.
NO_METADATA_DATABASE = "postgresql+psycopg://airflow@127.0.0.1:9/ask_for_the_airflow_db_fixture"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = NO_METADATA_DATABASE
# A developer's own settings must not leak into the tests (their connections, folders, anchor file).
for _variable in (
    "CDP_WAREHOUSE_URL", "AIRFLOW_CONN_WAREHOUSE", "AIRFLOW_CONN_WAREHOUSE_WEBHOOK", "CDP_MIGRATIONS_URL",
    "AIRFLOW_CONN_WAREHOUSE_RECONCILE", "AIRFLOW_CONN_WAREHOUSE_DEDUPE", "AIRFLOW_CONN_WAREHOUSE_EVIDENCE",
    "AIRFLOW_CONN_WAREHOUSE_FUNDER_REPORT",
    "CDP_AUDIT_ANCHOR_FILE", "CDP_IMPORT_FOLDERS", "CDP_REPORT_FOLDERS",
):  # fmt: skip
    os.environ.pop(_variable, None)

import pytest  # noqa: E402
from airflow_cluster import metadata_database  # noqa: E402
from support import create_database, drop_database, drop_logins, make_login  # noqa: E402

from cdp.warehouse import migrations  # noqa: E402
from cdp.warehouse.embedded import EmbeddedServer  # noqa: E402

TEMPLATE_DATABASE = "cdp_template"

# Fixtures shared by a domain's tests and its DAG's tests under tests/dags/ (the DAG tests live together).
pytest_plugins = ("fixtures.referrals", "fixtures.slack_sandbox")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest modules first: real Airflow stacks (marked ``stack``), then whole DAG runs (``slow``).

    ``make test`` runs two xdist workers with ``--dist loadscope``: a module goes whole to one worker, so its
    module-scoped fixtures (an Airflow stack, a synced warehouse) are built once, and modules are handed out in
    this order. Long ones first and the many short ones after lets the short ones fill in beside them, instead
    of one worker idling while the other finishes a 20-minute module it picked up last. A stable sort: the
    order within each group stays as collected.
    """
    items.sort(
        key=lambda item: (item.get_closest_marker("stack") is None, item.get_closest_marker("slow") is None)
    )


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedServer]:
    server = EmbeddedServer(_SESSION_DIR / "pg")
    server.start()
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def migrated_template(pg_server: EmbeddedServer) -> str:
    """A database migrated once; each test gets a copy (CREATE DATABASE … TEMPLATE takes ~0.1 s)."""
    pg_server.ensure_database(TEMPLATE_DATABASE)
    migrations.upgrade(pg_server.url(TEMPLATE_DATABASE))
    return TEMPLATE_DATABASE


@pytest.fixture
def empty_database_url(pg_server: EmbeddedServer) -> Iterator[str]:
    """A new, empty database (for migration tests)."""
    name = create_database(pg_server, None)
    yield pg_server.url(name)
    drop_database(pg_server, name)


@pytest.fixture
def warehouse_url(pg_server: EmbeddedServer, migrated_template: str) -> Iterator[str]:
    """A fresh, fully migrated warehouse database for one test."""
    name = create_database(pg_server, migrated_template)
    yield pg_server.url(name)
    drop_database(pg_server, name)


@pytest.fixture
def another_warehouse(pg_server: EmbeddedServer, migrated_template: str) -> Iterator[Callable[[], str]]:
    """Makes more fresh, fully migrated warehouses in one test (to compare two histories side by side)."""
    made: list[str] = []

    def make() -> str:
        made.append(create_database(pg_server, migrated_template))
        return pg_server.url(made[-1])

    yield make
    for name in made:
        drop_database(pg_server, name)


@pytest.fixture
def anchor_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "audit-anchors.jsonl"
    monkeypatch.setenv("CDP_AUDIT_ANCHOR_FILE", str(path))
    return path


@pytest.fixture(scope="session")
def airflow_db(pg_server: EmbeddedServer) -> Iterator[Path]:
    """Airflow's metadata database, migrated once per worker: its own database and role on the suite's
    PostgreSQL, as `make run` and the test clusters have it. Gives the suite's AIRFLOW_HOME.

    Airflow configures its ORM when it is first imported, often at collection: the ORM is re-pointed here, and
    the variable set for the ``airflow`` commands tests run. The migration runs in this process (what
    ``airflow db migrate`` calls), which spares a second interpreter importing Airflow.
    """
    from airflow import settings
    from airflow.configuration import conf
    from airflow.utils import db

    _, url = metadata_database(pg_server)
    url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = url
    conf.set("database", "sql_alchemy_conn", url)
    settings.configure_vars()
    settings.reconfigure_orm()
    db.upgradedb()
    yield Path(os.environ["AIRFLOW_HOME"])
    # Before the server stops: a pooled connection it cuts would print an error at the interpreter's exit.
    settings.dispose_orm()


@pytest.fixture
def load_dag(airflow_db: Path):
    """Load one DAG from ``dags/`` by id, as the dag-processor would."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    assert bag.import_errors == {}

    def _load(dag_id: str, *, retries: int = 0):
        """Retries are off unless asked for: dag.test() really waits out each retry delay."""
        dag = bag.dags[dag_id]
        for task in dag.tasks:
            task.retries = retries
        # dag.test() in Airflow 3.3.2 round-trips the DAG through serialisation, which leaves DeadlineAlerts
        # as plain dicts that a successful run then fails to look up; the scheduler path stores them properly.
        dag.deadline = None
        return dag

    return _load


@pytest.fixture
def logins(warehouse_url: str) -> Iterator[Callable[..., str]]:
    """Real login users of an application role (``support.make_login``): role -> URL; dropped afterwards."""
    created: list[str] = []

    def create(role: str, organization_id: str | None = None) -> str:
        login, url = make_login(warehouse_url, role, organization_id)
        created.append(login)
        return url

    yield create
    drop_logins(warehouse_url, created)
