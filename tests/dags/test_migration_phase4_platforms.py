"""End to end: `migration_phase4_platforms` under Airflow, against the sandbox: volunteers land with their
people, every record is landed or quarantined, the marts hold together, and a second run changes nothing."""

from __future__ import annotations

import psycopg
import pytest
from support import snapshot

from cdp_sandbox import volunteers
from cdp_sandbox.devserver import connection_env
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer
from cdp_sandbox.truth import sync_sandbox

TABLES = (
    "core.person",
    "core.volunteer",
    "core.volunteer_shift",
    "core.volunteer_hours",
    "raw.records",
    "ops.quarantine",
)


@pytest.mark.slow
def test_phase4_dag_syncs_volunteers_checks_its_criteria_and_reruns_changing_nothing(
    load_dag, warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(seed=9, learners=200)
    data = volunteers.of(world)
    with SandboxServer(world) as sandbox:
        sync_sandbox(warehouse_url, sandbox, ["moodle.users"], run_id="people")
        monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
        monkeypatch.setenv(
            *connection_env("galaxy", sandbox.settings("galaxy", max_attempts=2, retry_base_delay=0.01))
        )

        first = load_dag("migration_phase4_platforms").test(logical_date=None)
        after_first = snapshot(warehouse_url, TABLES)
        second = load_dag("migration_phase4_platforms").test(logical_date=None)

    assert first.state == second.state == "success"
    assert snapshot(warehouse_url, TABLES) == after_first
    with psycopg.connect(warehouse_url) as conn:
        counts = dict(
            conn.execute(
                "SELECT stream, rows_read FROM ops.sync_run WHERE source = 'galaxy' AND run_id = %s",
                (first.run_id,),
            ).fetchall()
        )
        volunteers_landed = conn.execute("SELECT count(*) FROM core.volunteer").fetchone()[0]
        events = conn.execute(
            "SELECT count(*) FROM audit.audit_events WHERE action = 'import' AND dag_id = 'migration_phase4_platforms'"
            " AND run_id = %s",
            (first.run_id,),
        ).fetchone()[0]
    assert counts == {stream: len(table) for stream, table in data.tables.items()}
    assert volunteers_landed == len(data.users) - len(data.malformed("users"))
    assert events == 3
