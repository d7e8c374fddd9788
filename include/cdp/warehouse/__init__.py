"""Access to the warehouse: which server, and connections that carry who is acting.

The server is the one named by the Airflow connection ``warehouse`` (given to this package as the
``AIRFLOW_CONN_WAREHOUSE`` URI or JSON, or as ``CDP_WAREHOUSE_URL``); without one, the project's embedded
PostgreSQL. Every connection records its actor and Airflow run in session settings that the audit triggers
read, so an audit event always says who and which run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote

import psycopg
from psycopg.rows import dict_row

from cdp.warehouse.embedded import DEFAULT_DATABASE, default_server


class WarehouseNotConfigured(RuntimeError):
    """No warehouse connection is set and the embedded server is not running."""


@dataclass(frozen=True)
class Actor:
    """Who is acting, written to every audit event of the session."""

    name: str
    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None

    def settings(self) -> dict[str, str]:
        return {
            "cdp.actor": self.name,
            "cdp.dag_id": self.dag_id or "",
            "cdp.run_id": self.run_id or "",
            "cdp.task_id": self.task_id or "",
        }


def _url_from_airflow_json(raw: str) -> str:
    spec: Mapping[str, object] = json.loads(raw)
    user = quote(str(spec.get("login") or ""), safe="")
    password = quote(str(spec.get("password") or ""), safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    port = f":{spec['port']}" if spec.get("port") else ""
    database = spec.get("schema") or DEFAULT_DATABASE
    return f"postgresql://{auth}{spec.get('host') or '127.0.0.1'}{port}/{database}"


def normalise_url(url: str) -> str:
    """Accept Airflow's connection forms (``postgres://``, JSON) and return a libpq URI."""
    url = url.strip()
    if url.startswith("{"):
        return _url_from_airflow_json(url)
    for prefix in ("postgres://", "postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def configured_url() -> str | None:
    """The URL given by configuration, or None when the embedded server should be used."""
    for variable in ("CDP_WAREHOUSE_URL", "AIRFLOW_CONN_WAREHOUSE"):
        value = os.environ.get(variable)
        if value:
            return normalise_url(value)
    return None


def resolve_url(*, start_embedded: bool = False) -> str:
    """The warehouse to use: configured, else the embedded server (started on request)."""
    url = configured_url()
    if url:
        return url
    server = default_server()
    if start_embedded:
        server.start()
        server.ensure_database()
    elif not server.is_running():
        raise WarehouseNotConfigured(
            "no warehouse is configured (AIRFLOW_CONN_WAREHOUSE / CDP_WAREHOUSE_URL) and the embedded one "
            "is not running: start it with `cdp warehouse up`"
        )
    return server.url()


def connect(url: str, actor: Actor, *, autocommit: bool = False) -> psycopg.Connection:
    """Open a connection whose audit events name ``actor``; rows come back as dicts."""
    conn = psycopg.connect(url, autocommit=autocommit, row_factory=dict_row)
    for name, value in actor.settings().items():
        conn.execute("SELECT set_config(%s, %s, false)", (name, value))
    if not autocommit:
        conn.commit()
    return conn


@contextmanager
def transaction(url: str, actor: Actor) -> Iterator[psycopg.Connection]:
    """One unit of work: commits when the block ends, rolls back everything if it raises."""
    conn = connect(url, actor)
    try:
        with conn.transaction():
            yield conn
    finally:
        conn.close()
