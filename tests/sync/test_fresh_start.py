"""The same seed gives the same warehouse on every fresh start (issue 21).

Two fresh warehouses, each fed by the first hour of `make run` from scratch: the sandbox's world as the local
stack serves it (``SANDBOX_SEED``, live, with its planted faults, dated from ``CDP_SANDBOX_TODAY``), then the
DAGs' own work in their order: every ``cdp_sync`` stream (one transaction each), then what the first complete
sync starts (dedupe, phase 4's volunteer syncs). In-process, without Airflow: the order is what Airflow
enforces, and the two starts take two different orders that Airflow could equally pick (streams that do not
wait for each other run in either order), as two real starts may.

What a fresh start legitimately changes, and so is left out of the comparison:
- values the warehouse generates at load: UUIDs (``person_id`` and every entity id, ``gen_random_uuid()``),
  columns whose default is ``now()`` or a sequence (load and update times, serial ids), and run ids;
  a person is named instead by the source identities mapped to them (``support.warehouse_state``);
- the live sandbox's clock: a live world serves each record once its time has come, so two starts an hour
  apart differ by that hour's new records. Both starts here read at the same moment of the reference day.
"""

from __future__ import annotations

import graphlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
from airflow.sdk.exceptions import AirflowSkipException
from psycopg import sql
from support import state_difference, warehouse_state

from cdp.identity.runs import apply_run, finish_run, score_shard, start_run
from cdp.runtime.assets import skip_before_first_complete_sync
from cdp.sources import registry
from cdp.sources.order import stream_edges
from cdp.sync.engine import sync_stream
from cdp.sync.specs import BY_KEY, SCHEDULED_SPECS, VOLUNTEER_SPECS
from cdp.warehouse import Actor
from cdp_sandbox import devserver
from cdp_sandbox.defaults import SANDBOX_SEED
from cdp_sandbox.faults import planted
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer

REFERENCE_DAY = "2026-12-07"
#: the moment both starts read the sources up to: 10:00 on the reference day (the live world's clock too)
STARTED = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
ACTOR = Actor("pytest-fresh-start")
#: fewer learners than `make run`'s 2,000 keep the test to minutes on a busy machine; the pipeline is the same
LEARNERS = 250
# Columns a load fills in whatever the data (besides UUIDs and now()/sequence defaults, found in the catalog).
RUN_SPECIFIC = {"run_id", "first_run_id", "last_run_id", "dedupe_run_id"}
#: a run the scheduler started (its cron time, or an Asset event), as a task's context hands it in
SCHEDULED_RUN = SimpleNamespace(run_type="scheduled")


def first_hour(url: str, sandbox: SandboxServer, *, reverse: bool) -> None:
    """The first sync, stream by stream in an order Airflow could pick, then dedupe and phase 4's syncs.

    Until its last stream has landed, a run of a DAG that waits for the first complete sync (its cron time
    or a table's Asset event came meanwhile) skips; then it runs."""
    edges = stream_edges(SCHEDULED_SPECS)
    order = graphlib.TopologicalSorter(edges)
    order.prepare()
    landed = 0
    while order.is_active():
        for key in sorted(order.get_ready(), reverse=reverse):
            with pytest.raises(AirflowSkipException, match="before the first complete sync"):
                skip_before_first_complete_sync(SCHEDULED_RUN, url)
            _sync(url, sandbox, key, "scheduled__first")
            order.done(key)
            landed += 1
    assert landed == len(edges)
    skip_before_first_complete_sync(SCHEDULED_RUN, url)  # the first complete sync is done: no skip
    plan = start_run(url, ACTOR, "asset_triggered__dedupe")
    for shard in range(plan.shards):
        score_shard(url, ACTOR, "asset_triggered__dedupe", shard)
    apply_run(url, ACTOR, "asset_triggered__dedupe")
    finish_run(url, ACTOR, "asset_triggered__dedupe")
    for spec in sorted(VOLUNTEER_SPECS, key=lambda spec: spec.wave):
        _sync(url, sandbox, spec.key, "asset_triggered__phase4")


def _sync(url: str, sandbox: SandboxServer, key: str, run_id: str) -> None:
    spec = BY_KEY[key]
    stream = registry.stream(spec.source, spec.stream, sandbox.settings(spec.source))
    sync_stream(url, stream, spec, actor=ACTOR, run_id=run_id, interval_end=STARTED)


def core_tables(url: str) -> dict[str, tuple[int, str]]:
    """Each core table: (rows, md5 of its rows' text, sorted) over the columns a fresh start does not change."""
    with psycopg.connect(url) as conn:
        columns: dict[str, list[str]] = {}
        for table, column, data_type, default, identity in conn.execute(
            "SELECT c.table_name, c.column_name, c.data_type, coalesce(c.column_default, ''), c.is_identity"
            " FROM information_schema.columns c JOIN information_schema.tables t"
            " ON t.table_schema = c.table_schema AND t.table_name = c.table_name"
            " WHERE c.table_schema = 'core' AND t.table_type = 'BASE TABLE' ORDER BY c.table_name, c.ordinal_position"
        ):
            generated = (
                data_type == "uuid" or identity == "YES" or column in RUN_SPECIFIC
                or any(call in default for call in ("now()", "nextval(", "gen_random_uuid()", "CURRENT_TIMESTAMP"))
            )  # fmt: skip
            columns.setdefault(table, [])
            if not generated:
                columns[table].append(column)
        digests = {}
        for table, kept in columns.items():
            row = (
                sql.SQL("ROW({})::text").format(sql.SQL(", ").join(map(sql.Identifier, kept)))
                if kept
                else sql.SQL("''")
            )
            digests[f"core.{table}"] = conn.execute(
                sql.SQL(
                    "SELECT count(*), md5(coalesce(string_agg(r, E'\\n' ORDER BY r), '')) FROM"
                    " (SELECT {} AS r FROM {}) rows"
                ).format(row, sql.Identifier("core", table))  # fmt: skip
            ).fetchone()
    return digests


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_two_fresh_starts_give_the_same_warehouse(
    another_warehouse: Callable[[], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDP_SANDBOX_TODAY", REFERENCE_DAY)
    warehouses = []
    for start, reverse in (("first", False), ("second", True)):
        # As `make run` starts the sandbox (devserver.sandbox_component): seed, reference day, live, planted.
        world = World(
            seed=SANDBOX_SEED, learners=LEARNERS, today=devserver.reference_day(), live=True,
            clock=STARTED.timestamp,
        )  # fmt: skip
        url = another_warehouse()
        with SandboxServer(world, ledger_folder=tmp_path / start / "ledger-drop") as sandbox:
            for fault in planted(world):
                sandbox.faults.add(fault)
            first_hour(url, sandbox, reverse=reverse)
        warehouses.append(url)

    first, second = (core_tables(url) for url in warehouses)
    assert first["core.person"][0] > LEARNERS and first["core.course_completion"][0] > 0
    assert {table: rows for table, (rows, _) in second.items()} == {
        table: rows for table, (rows, _) in first.items()
    }
    assert second == first
    first_state, second_state = (warehouse_state(url) for url in warehouses)
    for name, rows in first_state.items():
        assert second_state[name] == rows, (name, state_difference(rows, second_state[name]))
