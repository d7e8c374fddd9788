"""Access to the warehouse: which server, as which login, and connections that carry who is acting.

The server is the one named by the Airflow connection ``warehouse`` (given to this package as the
``AIRFLOW_CONN_WAREHOUSE`` URI or JSON, or as ``CDP_WAREHOUSE_URL``); without one, the project's embedded
PostgreSQL. Every connection records its actor and Airflow run in session settings that the audit triggers
read, so an audit event always says who and which run.

Each process logs in as its own role (issue 15, item 9): the pipeline (DAG tasks) as a ``cdp_loader``
member (the ``warehouse`` connection), the webhook intake as a ``cdp_webhook`` member (the
``warehouse_webhook`` connection, ``AIRFLOW_CONN_WAREHOUSE_WEBHOOK``), the CLI as the operator's own login
(``CDP_WAREHOUSE_URL``), and only migrations as the superuser (``CDP_MIGRATIONS_URL``). On the embedded
server these logins are made after migrations with generated passwords (``embedded.ensure_process_logins``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote

import psycopg
from psycopg.rows import dict_row

from cdp.warehouse.embedded import (
    DEFAULT_DATABASE,
    FAMILY_PURPOSES,
    EmbeddedServerError,
    default_server,
    ensure_process_logins,
    process_urls,
)

log = logging.getLogger(__name__)

#: Who connects: each process has its own login (``embedded.PROCESS_LOGINS``); migrations use the superuser.
PIPELINE, WEBHOOK, OPERATOR, MIGRATIONS = "pipeline", "webhook", "operator", "migrations"
WEBHOOK_URL_VARIABLE = "AIRFLOW_CONN_WAREHOUSE_WEBHOOK"
MIGRATIONS_URL_VARIABLE = "CDP_MIGRATIONS_URL"


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


def resolve_url(*, start_embedded: bool = False, purpose: str = OPERATOR) -> str:
    """The warehouse to use: configured, else the embedded server (started on request) as ``purpose``'s own
    login (the superuser only for ``MIGRATIONS``)."""
    if purpose == MIGRATIONS and os.environ.get(MIGRATIONS_URL_VARIABLE):
        return normalise_url(os.environ[MIGRATIONS_URL_VARIABLE])
    if purpose == WEBHOOK and os.environ.get(WEBHOOK_URL_VARIABLE):
        return normalise_url(os.environ[WEBHOOK_URL_VARIABLE])
    url = configured_url()
    if url:
        if purpose == WEBHOOK:
            log.warning(
                "the webhook intake has no connection of its own (warehouse_webhook): using `warehouse`; "
                "give it a cdp_webhook login (docker-compose.yaml, `cdp warehouse logins`)"
            )
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
    if purpose == MIGRATIONS:
        return server.url()
    try:
        return process_urls(server)[purpose]
    except EmbeddedServerError as error:
        if not start_embedded:
            raise WarehouseNotConfigured(str(error)) from error
    try:  # a started, migrated server whose logins were never made (a checkout migrated before 0019)
        return ensure_process_logins(server)[purpose]
    except EmbeddedServerError as error:
        raise WarehouseNotConfigured(str(error)) from error


def migrations_url() -> str:
    """The superuser's URL, for migrations only: ``CDP_MIGRATIONS_URL``, else the configured warehouse (a
    deployment that gives no separate owner), else the embedded server's superuser (started)."""
    return resolve_url(start_embedded=configured_url() is None, purpose=MIGRATIONS)


def process_environment() -> dict[str, str]:
    """The embedded server's connections for the local stack's Airflow processes (``make run``): the
    pipeline's and the webhook intake's own logins, never the superuser. Call after migrations."""
    urls = ensure_process_logins(default_server())
    families = {
        f"AIRFLOW_CONN_{conn_id.upper()}": urls[purpose] for purpose, conn_id in FAMILY_PURPOSES.items()
    }
    return {"AIRFLOW_CONN_WAREHOUSE": urls[PIPELINE], WEBHOOK_URL_VARIABLE: urls[WEBHOOK], **families}


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
