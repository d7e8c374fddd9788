"""Helpers the test modules share (importable: the suite's root conftest puts ``tests/`` on the path)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import psycopg
from psycopg import sql

from cdp.warehouse.embedded import EmbeddedServer


def create_database(server: EmbeddedServer, template: str | None = None) -> str:
    """A new database, empty or copied from ``template`` (CREATE DATABASE … TEMPLATE takes ~0.1 s)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)
        )
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute(statement)
    return name


def drop_database(server: EmbeddedServer, name: str) -> None:
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def snapshot(url: str, tables: Iterable[str]) -> dict[str, list[str]]:
    """Every row of each table as text, sorted: equal snapshots mean equal tables."""
    with psycopg.connect(url) as conn:
        return {
            table: sorted(
                row[0]
                for row in conn.execute(
                    sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier(*table.split(".")))
                )
            )
            for table in tables
        }
