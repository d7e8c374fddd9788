"""Sandbox people synced into a test warehouse, and the generator's truth about who is who."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import combinations

import psycopg
import pytest
from psycopg import sql

from cdp.sandbox.generator import World
from cdp.sandbox.server import SandboxServer
from cdp.sources import registry
from cdp.sync.engine import sync_stream
from cdp.sync.specs import SPECS, spec_for
from cdp.warehouse import Actor
from cdp.warehouse.embedded import EmbeddedServer

SYNC_ACTOR = Actor("pytest:sync")
#: person_source_id key spaces whose records the generator can name the real person of.
TRUTH_STREAMS = {"moodle.user": ("moodle", "users"), "salesforce.contact": ("salesforce", "Contact")}


def sync(url: str, sandbox: SandboxServer, keys: list[str] | None = None, *, end: datetime | None = None,
         run: str = "sync-1") -> None:  # fmt: skip
    """Sync streams (all, wave order) from the sandbox up to `end` (default now)."""
    specs = sorted(SPECS, key=lambda s: s.wave) if keys is None else [spec_for(*k.split(".")) for k in keys]
    for spec in specs:
        stream = registry.stream(spec.source, spec.stream, sandbox.settings(spec.source))
        sync_stream(url, stream, spec, actor=SYNC_ACTOR, run_id=run, interval_end=end or datetime.now(UTC))


def truth_of_people(url: str, world: World) -> dict[str, set[str]]:
    """Warehouse person id (following merges) -> the generator's real persons behind its records."""
    people: dict[str, set[str]] = {}
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT coalesce(p.merged_into, p.person_id)::text, s.source, s.source_record_id"
            " FROM core.person_source_id s JOIN core.person p ON p.person_id = s.person_id"
        ).fetchall()
        charges = conn.execute(
            "SELECT DISTINCT ON (key) key, source_record_id FROM (SELECT coalesce(payload ->> 'customer',"
            " lower(trim(payload #>> '{billing_details,email}'))) AS key, source_record_id FROM raw.records"
            " WHERE source = 'stripe' AND stream = 'charges') c ORDER BY key, source_record_id"
        ).fetchall()
    charge_of_payer = dict(charges)
    for person, source, record in rows:
        if source == "stripe.billing" and record in charge_of_payer:
            real = world.truth.person_of("stripe", "charges", charge_of_payer[record])
            if real is not None:
                people.setdefault(person, set()).add(real)
        if source in TRUTH_STREAMS:
            real = world.truth.person_of(*TRUTH_STREAMS[source], _record_id(source, record))
            if real is not None:
                people.setdefault(person, set()).add(real)
    return people


def _record_id(source: str, record: str) -> object:
    return int(record) if source == "moodle.user" else record


def true_duplicate_pairs(people: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Pairs of warehouse people that are the same real person."""
    by_real: dict[str, list[str]] = {}
    for person, reals in people.items():
        for real in reals:
            by_real.setdefault(real, []).append(person)
    return {tuple(sorted(pair)) for group in by_real.values() for pair in combinations(sorted(group), 2)}


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=11, learners=300)


@pytest.fixture
def sandbox(world: World) -> Iterator[SandboxServer]:
    with SandboxServer(world) as server:
        yield server


def copy_database(server: EmbeddedServer, template: str) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
        )
    return name


def drop_database(server: EmbeddedServer, name: str) -> None:
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def synced_template(pg_server: EmbeddedServer, migrated_template: str, world: World) -> Iterator[str]:
    """A warehouse with every stream of the sandbox synced, once per module (copied for each test)."""
    name = copy_database(pg_server, migrated_template)
    with SandboxServer(world) as server:
        sync(pg_server.url(name), server)
    yield name
    drop_database(pg_server, name)


@pytest.fixture
def synced_url(pg_server: EmbeddedServer, synced_template: str) -> Iterator[str]:
    name = copy_database(pg_server, synced_template)
    yield pg_server.url(name)
    drop_database(pg_server, name)


def core_snapshot(url: str) -> dict[str, list[str]]:
    """Every row of every core table, as text, sorted: equal snapshots mean equal tables."""
    with psycopg.connect(url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = 'core' ORDER BY 1"
            )
        ]
        return {
            table: sorted(
                row[0] for row in conn.execute(sql.SQL("SELECT t::text FROM {} t").format(sql.SQL(table)))
            )
            for table in tables
        }


def events(url: str, action: str) -> list[dict]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT entity_type, entity_id, details, actor FROM audit.audit_events WHERE action = %s ORDER BY seq",
            (action,),
        ).fetchall()
    return [{"entity_type": r[0], "entity_id": r[1], "details": r[2], "actor": r[3]} for r in rows]
