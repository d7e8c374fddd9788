"""`make run` as a newcomer meets it: one real local stack (`cdp run`, started by ``tests/ui/stack.py``),
shared by the module, checked from the outside as a person would.

Airflow's metadata is in PostgreSQL, in its own database with its own non-superuser role and a generated
password; `cdp airflow …` reaches the stack; an alert sent through the ``slack_alerts`` connection `make run`
defines reaches the sandbox and `cdp sandbox slack` prints it; a second start is refused naming the running
one; a killed scheduler is restarted; Ctrl-C stops every process within seconds and frees the ports; `make
stop` then stops the embedded PostgreSQL too.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
from support import create_database, drop_database, free_port
from ui import stack as local_stack

from cdp.warehouse.embedded import EmbeddedServer, port_is_free
from cdp_sandbox import devserver
from cdp_sandbox.processes import read_records

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]


REPO = Path(__file__).resolve().parents[2]
DAG_IDS = {path.stem for path in (REPO / "dags").glob("cdp_*.py")}


@pytest.fixture(scope="module")
def running(pg_server, migrated_template) -> Iterator[local_stack.Stack]:
    name = create_database(pg_server, migrated_template)
    # Not under pytest's basetemp: other pytest sessions on the machine rotate those away mid-run.
    work = Path(tempfile.mkdtemp(prefix="cdp-local-stack-"))
    started = local_stack.start(pg_server.url(name), work)
    try:
        yield started
    finally:
        started.stop()
        drop_database(pg_server, name)
        shutil.rmtree(work, ignore_errors=True)


def _metadata(stack: local_stack.Stack) -> psycopg.Connection:
    settings = devserver.read_stack_env() if os.environ.get("CDP_HOME") == str(stack.home) else None
    assert settings, "use the in_stack_home fixture"
    return psycopg.connect(
        settings["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("+psycopg", ""), autocommit=True
    )


def _wait_for_dags(stack: local_stack.Stack, timeout: float = 900) -> set[str]:
    """The DAGs the dag-processor has parsed into the metadata database (parsing takes minutes when busy)."""
    deadline = time.monotonic() + timeout
    parsed: set[str] = set()
    while time.monotonic() < deadline:
        with _metadata(stack) as conn:
            parsed = {row[0] for row in conn.execute("SELECT dag_id FROM serialized_dag")}
        if parsed >= DAG_IDS:
            return parsed
        time.sleep(3)
    raise AssertionError(f"never parsed: {sorted(DAG_IDS - parsed)}\n{stack.log_tail()}")


@pytest.fixture
def in_stack_home(running: local_stack.Stack, monkeypatch: pytest.MonkeyPatch) -> local_stack.Stack:
    """This test process reads the stack's pid files and settings (its CDP_HOME)."""
    monkeypatch.setenv("CDP_HOME", str(running.home))
    return running


def test_airflow_metadata_is_its_own_postgres_database_with_its_own_role(
    in_stack_home: local_stack.Stack,
) -> None:
    stack = in_stack_home
    settings = devserver.read_stack_env()  # .cdp/airflow/stack.env, what the components got
    url = settings["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert url.startswith("postgresql+psycopg://airflow:"), url.split(":", 2)[:2]
    secrets_file = stack.home / "airflow" / "secrets.json"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    password = json.loads(secrets_file.read_text())["metadata_password"]
    assert len(password) >= 32 and password not in {"airflow", "admin", "postgres"}
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        who, database, superuser = conn.execute(
            "SELECT current_user, current_database(), rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert (who, database, superuser) == ("airflow", "airflow", False)
        # Migrated by `make run`, and the DAGs parsed into it by the stack's dag-processor.
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 1
    assert not list((stack.home / "airflow").glob("*.db")), "no SQLite file in AIRFLOW_HOME"
    # What the components themselves use: Airflow's own check against the configured database.
    result = stack.cdp("airflow", "db", "check")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Connection successful" in result.stdout + result.stderr


def test_cdp_airflow_runs_airflow_commands_against_the_stack(in_stack_home: local_stack.Stack) -> None:
    _wait_for_dags(in_stack_home)
    result = in_stack_home.cdp("airflow", "dags", "list", "--output", "json")
    assert result.returncode == 0, result.stderr[-3000:]
    listed = json.loads(result.stdout[result.stdout.index("[{") :])
    assert {dag["dag_id"] for dag in listed} >= DAG_IDS


def test_an_alert_reaches_the_sandbox_and_cdp_sandbox_slack_prints_it(
    in_stack_home: local_stack.Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cdp.runtime.alerts import slack_sender

    connection = devserver.read_stack_env()["AIRFLOW_CONN_SLACK_ALERTS"]
    assert json.loads(connection)["conn_type"] == "slackwebhook"
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", connection)
    slack_sender("slack_alerts")("cdp_sync failed: test alert 4711")  # as the DAGs' notifiers send it
    result = in_stack_home.cdp("sandbox", "slack")
    assert result.returncode == 0, result.stderr
    assert "1 Slack message(s) received" in result.stdout
    assert "cdp_sync failed: test alert 4711" in result.stdout


def test_the_readmes_backfill_runs_beside_the_scheduler(in_stack_home: local_stack.Stack) -> None:
    stack = in_stack_home
    scheduler = next(record for record in read_records() if record.name == "scheduler")
    result = stack.cdp(
        "airflow", "backfill", "create", "--dag-id", "cdp_data_health", "--from-date", "2026-11-01T00:00",
        "--to-date", "2026-11-01T02:00", "--reprocess-behavior", "completed", "--max-active-runs", "1",
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "database is locked" not in output and "OperationalError" not in output
    with _metadata(stack) as conn:
        runs = conn.execute(
            "SELECT count(*) FROM dag_run WHERE dag_id = 'cdp_data_health' AND backfill_id IS NOT NULL"
        ).fetchone()[0]
    assert runs >= 2, "the backfill's runs are in the metadata database for the scheduler to run"
    assert scheduler.leader_alive(), "the scheduler survived the backfill"
    assert "scheduler exited" not in stack.log_path.read_text()


def test_a_second_start_is_refused_naming_the_running_one(running: local_stack.Stack) -> None:
    result = running.cdp("run", "--port", str(free_port()), "--sandbox-port", str(free_port()), timeout=300)
    assert result.returncode == 1
    assert "already running" in result.stderr and f"pid {running.process.pid}" in result.stderr
    assert running.process.poll() is None, "the running stack is left alone"


def test_a_killed_scheduler_is_restarted(in_stack_home: local_stack.Stack) -> None:
    before = next(record for record in read_records() if record.name == "scheduler")
    psutil.Process(before.pid).kill()
    deadline = time.monotonic() + 300
    after = before
    while time.monotonic() < deadline and (after.pid == before.pid or not after.leader_alive()):
        time.sleep(1)
        after = next((record for record in read_records() if record.name == "scheduler"), before)
    assert after.pid != before.pid and after.leader_alive(), in_stack_home.log_tail()
    assert "scheduler exited with code -9; restarting it (1 of 3" in in_stack_home.log_path.read_text()


def test_ctrl_c_stops_every_process_within_seconds_and_make_stop_the_warehouse(
    in_stack_home: local_stack.Stack,
) -> None:
    stack = in_stack_home
    records = read_records()
    assert {record.name for record in records} >= {"supervisor", "sandbox", *devserver.COMPONENTS}
    # The components fork their workers (the API server's, the scheduler's executor) as they warm up: wait
    # for some, so the stop is seen to take children too.
    deadline = time.monotonic() + 120
    tree = [process for record in records for process in record.members()]
    while len(tree) <= len(records) and time.monotonic() < deadline:
        time.sleep(2)
        tree = [process for record in records for process in record.members()]
    assert len(tree) > len(records), "the components' children are part of the tree"

    seconds = stack.interrupt()

    assert stack.process.returncode == 0, stack.log_tail()
    assert seconds < 30, f"Ctrl-C took {seconds:.1f} s"
    left = [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert left == [], f"left running after Ctrl-C: {left}"
    assert port_is_free(stack.port) and port_is_free(stack.sandbox_port)
    assert read_records() == []
    assert "Ctrl-C: stopping Airflow and the sandbox" in stack.log_path.read_text()
    print(f"\nCtrl-C stopped {len(tree)} processes in {seconds:.1f} s")

    server = EmbeddedServer(Path(stack.home) / "warehouse")
    assert server.is_running(), "Ctrl-C leaves the warehouse running"
    result = stack.cdp("stop")
    assert result.returncode == 0 and "stopped the embedded PostgreSQL" in result.stdout
    assert not server.is_running()
