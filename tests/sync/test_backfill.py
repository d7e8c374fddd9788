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

from cdp.sandbox.faults import Fault
from cdp.sandbox.generator import World
from cdp.sandbox.server import SandboxServer
from cdp.sources import registry
from cdp.sources.base import SourceError
from cdp.sync.engine import sync_stream
from cdp.sync.specs import SPECS
from cdp.warehouse import Actor

ACTOR = Actor("pytest")
INTERVALS = 8

# Each person is labelled by the sorted list of source identities that map to it; every other table
# names people through that label, so two warehouses built in different orders compare equal.
STATE_QUERIES = {
    "people": """
        WITH label AS (
            SELECT person_id, string_agg(source || ':' || source_record_id, ',' ORDER BY source, source_record_id) AS who
            FROM core.person_source_id GROUP BY person_id)
        SELECT l.who, p.given_name, p.family_name, p.date_of_birth, p.email, p.phone, p.country, p.is_learner,
               p.is_donor, p.merged_into IS NULL
        FROM core.person p LEFT JOIN label l USING (person_id)""",
    "courses": "SELECT source_record_id, code, title, starts_on, ends_on FROM core.course",
    "enrollments": """
        SELECT e.source_record_id, c.source_record_id, e.status, e.enrolled_at,
               (SELECT min(m.source || ':' || m.source_record_id) FROM core.person_source_id m WHERE m.person_id = e.person_id)
        FROM core.enrollment e JOIN core.course c USING (course_id)""",
    "completions": """
        SELECT k.source_record_id, c.source_record_id, k.completed_at, k.grade,
               (SELECT e.source_record_id FROM core.enrollment e WHERE e.enrollment_id = k.enrollment_id),
               (SELECT min(m.source || ':' || m.source_record_id) FROM core.person_source_id m WHERE m.person_id = k.person_id)
        FROM core.course_completion k JOIN core.course c USING (course_id)""",
    "donations": """
        SELECT d.financial_transaction_id, d.amount_minor, d.currency, d.received_at, d.status, d.refunded_minor,
               d.campaign,
               (SELECT min(m.source || ':' || m.source_record_id) FROM core.person_source_id m WHERE m.person_id = d.person_id)
        FROM core.donation d""",
    "raw": "SELECT source, stream, source_record_id, payload FROM raw.records",
    "quarantine": "SELECT source, stream, source_record_id, reason, payload, resolved_at IS NULL FROM ops.quarantine",
}


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


def _state(url: str) -> dict[str, list[str]]:
    with psycopg.connect(url) as conn:
        return {
            name: sorted(str(row) for row in conn.execute(query).fetchall())
            for name, query in STATE_QUERIES.items()
        }


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
    assert _state(other) != _state(warehouse_url)

    # The sources are back; operations backfill the failed intervals, oldest first, as Airflow runs them.
    sandbox.faults.clear()
    for number in range(3, INTERVALS):
        _run(other, sandbox, ends[number - 1], ends[number], f"backfill__{number}")

    scheduled, backfilled = _state(warehouse_url), _state(other)
    assert scheduled["people"] and scheduled["donations"] and scheduled["quarantine"]
    for name in STATE_QUERIES:
        assert backfilled[name] == scheduled[name], (name, _difference(scheduled[name], backfilled[name]))


def test_a_backfill_of_past_intervals_changes_nothing(
    warehouse_url: str, world: World, sandbox: SandboxServer
) -> None:
    _scheduled(warehouse_url, sandbox, world)
    before = _state(warehouse_url)
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

    after = _state(warehouse_url)
    for name in STATE_QUERIES:
        assert after[name] == before[name], (name, _difference(before[name], after[name]))
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


def _difference(expected: list[str], got: list[str]) -> dict[str, list[str]]:
    """The first rows that differ, for a failure message a person can read."""
    return {
        "missing": sorted(set(expected) - set(got))[:3],
        "unexpected": sorted(set(got) - set(expected))[:3],
    }
