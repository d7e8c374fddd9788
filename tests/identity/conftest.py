"""Sandbox people synced into a test warehouse (once per module, copied for each test), full snapshots of
the core tables, and the audit events of one kind."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import sql
from support import create_database, drop_database

from cdp.warehouse.embedded import EmbeddedServer
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer
from cdp_sandbox.truth import sync_sandbox


def _core_snapshot(url: str) -> dict[str, list[str]]:
    """Every row of every core table, as text, sorted: equal snapshots mean equal tables."""
    with psycopg.connect(url) as conn:
        tables = [
            (row[0], row[1])
            for row in conn.execute(
                "SELECT schemaname, tablename FROM pg_tables WHERE schemaname = 'core' ORDER BY 1, 2"
            )
        ]
        return {
            f"{schema}.{table}": sorted(
                row[0]
                for row in conn.execute(
                    sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier(schema, table))
                )
            )
            for schema, table in tables
        }


def _events(url: str, action: str) -> list[dict]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT entity_type, entity_id, details, actor FROM audit.audit_events WHERE action = %s ORDER BY seq",
            (action,),
        ).fetchall()
    return [{"entity_type": r[0], "entity_id": r[1], "details": r[2], "actor": r[3]} for r in rows]


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=11, learners=300)


@pytest.fixture(scope="module")
def synced_template(pg_server: EmbeddedServer, migrated_template: str, world: World) -> Iterator[str]:
    """A warehouse with every stream of the sandbox synced."""
    name = create_database(pg_server, migrated_template)
    with SandboxServer(world) as server:
        sync_sandbox(pg_server.url(name), server)
    yield name
    drop_database(pg_server, name)


@pytest.fixture
def synced_url(pg_server: EmbeddedServer, synced_template: str) -> Iterator[str]:
    name = create_database(pg_server, synced_template)
    yield pg_server.url(name)
    drop_database(pg_server, name)


@pytest.fixture
def core_snapshot() -> Callable[[str], dict[str, list[str]]]:
    return _core_snapshot


@pytest.fixture
def audit_events() -> Callable[[str, str], list[dict]]:
    return _events


@pytest.fixture
def half_synced(pg_server: EmbeddedServer, migrated_template: str):
    """A world without later edits, synced up to 60% of its history, and its sandbox still serving."""
    world = World(seed=23, learners=250, edited_share=0.0)
    cut = world.start + (world.end - world.start) * 0.6
    name = create_database(pg_server, migrated_template)
    with SandboxServer(world) as server:
        sync_sandbox(pg_server.url(name), server, end=cut)
        yield pg_server.url(name), world, server, cut
    drop_database(pg_server, name)
