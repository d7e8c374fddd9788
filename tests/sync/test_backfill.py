"""Backfills: the state a warehouse reaches does not depend on how its intervals were run.

Scheduled runs (one interval after another), and the same history where some runs failed and were
backfilled later, must leave the same people, activity, money, raw payloads and rejections; a backfill
of intervals that already ran changes nothing.
Person ids are generated, so the state is compared by natural keys: each person is named by the source
identities that map to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from support import STATE_QUERIES, state_difference, warehouse_state

from cdp.sources import registry
from cdp.sources.base import SourceError
from cdp.sync.engine import sync_stream
from cdp.sync.specs import SPECS
from cdp.warehouse import Actor
from cdp_sandbox.faults import Fault
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer

ACTOR = Actor("pytest")
INTERVALS = 8


@pytest.fixture
def world() -> World:
    return World(seed=23, learners=250)


@pytest.fixture
def sandbox(world: World, tmp_path) -> Iterator[SandboxServer]:
    with SandboxServer(world, ledger_folder=tmp_path / "ledger") as server:
        yield server


def _interval_ends(world: World) -> list[datetime]:
    step = (world.end_ts + 86_400 - world.start_ts) / INTERVALS
    return [datetime.fromtimestamp(world.start_ts + round(step * (i + 1)), UTC) for i in range(INTERVALS)]


def _run(url: str, sandbox: SandboxServer, start: datetime | None, end: datetime, run_id: str) -> None:
    for spec in sorted(SPECS, key=lambda s: s.wave):
        stream = registry.stream(
            spec.source, spec.stream, sandbox.settings(spec.source, max_attempts=2, retry_base_delay=0.01)
        )
        sync_stream(url, stream, spec, actor=ACTOR, run_id=run_id, interval_start=start, interval_end=end)


def _scheduled(url: str, sandbox: SandboxServer, world: World) -> None:
    start = None
    for number, end in enumerate(_interval_ends(world)):
        _run(url, sandbox, start, end, f"scheduled__{number}")
        start = end


def test_a_backfill_after_an_outage_equals_the_uninterrupted_history(
    warehouse_url: str, another_warehouse, world: World, sandbox: SandboxServer
) -> None:
    _scheduled(warehouse_url, sandbox, world)

    # The same history, but every source is down for intervals 4 to 8: those runs fail and leave nothing.
    other = another_warehouse()
    ends = _interval_ends(world)
    start = None
    for number, end in enumerate(ends):
        if number == 3:
            for source in {spec.source for spec in SPECS}:
                sandbox.faults.add(Fault("server_error", source))
        if number >= 3:
            with pytest.raises(SourceError):
                _run(other, sandbox, start, end, f"scheduled__{number}")
        else:
            _run(other, sandbox, start, end, f"scheduled__{number}")
        start = end
    assert warehouse_state(other) != warehouse_state(warehouse_url)

    # The sources are back; operations backfill the failed intervals, oldest first, as Airflow runs them.
    sandbox.faults.clear()
    for number in range(3, INTERVALS):
        _run(other, sandbox, ends[number - 1], ends[number], f"backfill__{number}")

    scheduled, backfilled = warehouse_state(warehouse_url), warehouse_state(other)
    assert scheduled["people"] and scheduled["donations"] and scheduled["quarantine"]
    for name in STATE_QUERIES:
        assert backfilled[name] == scheduled[name], (
            name,
            state_difference(scheduled[name], backfilled[name]),
        )


def test_a_backfill_of_past_intervals_changes_nothing(
    warehouse_url: str, world: World, sandbox: SandboxServer
) -> None:
    _scheduled(warehouse_url, sandbox, world)
    before = warehouse_state(warehouse_url)
    with psycopg.connect(warehouse_url) as conn:
        watermarks = conn.execute(
            "SELECT source, stream, watermark FROM ops.sync_watermark ORDER BY 1, 2"
        ).fetchall()
        audit_rows = conn.execute(
            "SELECT count(*) FROM audit.audit_events WHERE action <> 'import'"
        ).fetchone()[0]

    ends = _interval_ends(world)
    for number in (5, 2, 3):  # out of order, as someone clearing runs in the UI would
        _run(warehouse_url, sandbox, ends[number - 1], ends[number], f"backfill__{number}")

    after = warehouse_state(warehouse_url)
    for name in STATE_QUERIES:
        assert after[name] == before[name], (name, state_difference(before[name], after[name]))
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute(
            "SELECT source, stream, watermark FROM ops.sync_watermark ORDER BY 1, 2"
        ).fetchall() == (watermarks)
        # Nothing in core changed, so the change triggers wrote nothing; only the import events were added.
        changes = conn.execute(
            "SELECT action, entity_type, details ->> 'rows', left(details ->> 'statement', 200)"
            " FROM audit.audit_events WHERE action <> 'import' ORDER BY seq OFFSET %s",
            (audit_rows,),
        ).fetchall()
        assert changes == []
        backfilled = conn.execute(
            "SELECT count(*) FROM ops.sync_run WHERE run_id LIKE 'backfill__%'"
        ).fetchone()[0]
    assert backfilled == 3 * len(SPECS)
