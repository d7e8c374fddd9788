"""Helpers the test modules share (importable: the suite's root conftest puts ``tests/`` on the path)."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import uuid
from collections.abc import Iterable
from pathlib import Path

import psycopg
from psycopg import sql

from cdp.warehouse.embedded import PROCESS_LOGINS, EmbeddedServer, ensure_login, port_is_free

#: Roles whose logins are processes (made like `cdp warehouse logins` does), not people (privacy.create_login).
PROCESS_ROLES = frozenset(role for _login, role in PROCESS_LOGINS.values())


def free_port() -> int:
    """A free port below the kernel's ephemeral range, for a server started later (Airflow takes seconds to
    bind). A port from bind(0) is free only until the next bind(0): the other xdist worker's sandbox
    servers, started by the hundred, could be handed it in the meantime; they never get one from below."""
    ranges = Path("/proc/sys/net/ipv4/ip_local_port_range")
    first_ephemeral = int(ranges.read_text().split()[0]) if ranges.exists() else 32768
    for _ in range(200):
        port = random.randrange(10_000, first_ephemeral)
        if port_is_free(port):
            return port
    raise RuntimeError(f"no free port between 10000 and {first_ephemeral}")


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


# The warehouse's state by natural keys (person ids are generated): each person is labelled by the sorted
# list of source identities that map to it, and every other table names people through that label, so two
# warehouses built in different orders (scheduled runs, backfills) compare equal.
STATE_QUERIES = {
    "people": """
        WITH label AS (
            SELECT person_id,
                   string_agg(source || ':' || source_record_id, ',' ORDER BY source, source_record_id) AS who
            FROM core.person_source_id GROUP BY person_id)
        SELECT l.who, p.given_name, p.family_name, p.date_of_birth, p.email, p.phone, p.country, p.is_learner,
               p.is_donor, p.merged_into IS NULL
        FROM core.person p LEFT JOIN label l USING (person_id)""",
    "courses": "SELECT source_record_id, code, title, starts_on, ends_on FROM core.course",
    "enrollments": """
        SELECT e.source_record_id, c.source_record_id, e.status, e.enrolled_at,
               (SELECT min(m.source || ':' || m.source_record_id) FROM core.person_source_id m
                WHERE m.person_id = e.person_id)
        FROM core.enrollment e JOIN core.course c USING (course_id)""",
    "completions": """
        SELECT k.source_record_id, c.source_record_id, k.completed_at, k.grade,
               (SELECT e.source_record_id FROM core.enrollment e WHERE e.enrollment_id = k.enrollment_id),
               (SELECT min(m.source || ':' || m.source_record_id) FROM core.person_source_id m
                WHERE m.person_id = k.person_id)
        FROM core.course_completion k JOIN core.course c USING (course_id)""",
    "donations": """
        SELECT d.financial_transaction_id, d.amount_minor, d.currency, d.received_at, d.status, d.refunded_minor,
               d.campaign,
               (SELECT min(m.source || ':' || m.source_record_id) FROM core.person_source_id m
                WHERE m.person_id = d.person_id)
        FROM core.donation d""",
    "raw": "SELECT source, stream, source_record_id, payload FROM raw.records",
    "quarantine": "SELECT source, stream, source_record_id, reason, payload, resolved_at IS NULL FROM ops.quarantine",
}


def warehouse_state(url: str) -> dict[str, list[str]]:
    """Each projection of ``STATE_QUERIES`` as sorted rows of text: equal states mean equal warehouses."""
    with psycopg.connect(url) as conn:
        return {
            name: sorted(str(row) for row in conn.execute(query).fetchall())
            for name, query in STATE_QUERIES.items()
        }


def state_difference(expected: list[str], got: list[str]) -> dict[str, list[str]]:
    """The first rows that differ, for a failure message a person can read."""
    return {
        "missing": sorted(set(expected) - set(got))[:3],
        "unexpected": sorted(set(got) - set(expected))[:3],
    }


def cluster_connections(
    sandbox, warehouse_url: str, *, sources: bool = True, **settings: object
) -> dict[str, str]:
    """The Airflow connections of a test cluster: the warehouse, Slack at the sandbox's receiver and (with
    ``sources``) every polled source at the sandbox, with ``settings`` added to each source's."""
    import json

    from cdp.sync.specs import SCHEDULED_SPECS
    from cdp_sandbox.devserver import connection_env

    connections = dict(
        connection_env(source, sandbox.settings(source, **settings))
        for source in ({spec.source for spec in SCHEDULED_SPECS} if sources else ())
    )
    connections["AIRFLOW_CONN_WAREHOUSE"] = warehouse_url
    connections["AIRFLOW_CONN_SLACK_ALERTS"] = json.dumps(
        {"conn_type": "slackwebhook", "password": sandbox.slack_webhook_url}
    )
    return connections


def scheduled_history(url: str, sandbox, intervals, **settings: object) -> None:
    """What cdp_sync's scheduled runs of ``intervals`` do, in process and in order: every stream, people
    first, each run with its data interval (``settings``: extra connection settings, as the test's cluster
    has them). What a run through Airflow must leave too."""
    from cdp.sources import registry
    from cdp.sync.engine import sync_stream
    from cdp.sync.specs import SCHEDULED_SPECS
    from cdp.warehouse import Actor

    for number, (start, end) in enumerate(intervals):
        for spec in sorted(SCHEDULED_SPECS, key=lambda s: s.wave):
            stream = registry.stream(spec.source, spec.stream, sandbox.settings(spec.source, **settings))
            sync_stream(url, stream, spec, actor=Actor("pytest"), run_id=f"scheduled__{number}",
                        interval_start=start, interval_end=end)  # fmt: skip


def make_login(admin_url: str, role: str, organization_id: str | None = None) -> tuple[str, str]:
    """A real login (a cluster-wide role) of an application role on ``admin_url``'s database: (name, URL).
    A person's through privacy.create_login, a process's (pipeline, webhook intake, a DAG family) as
    `cdp warehouse logins` makes it. Drop it with ``drop_logins``."""
    from urllib.parse import quote, urlsplit, urlunsplit

    login = f"t_{role.removeprefix('cdp_')}_{uuid.uuid4().hex[:10]}"
    password = uuid.uuid4().hex
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if role in PROCESS_ROLES:
            ensure_login(conn, login, role, password)
        else:
            conn.execute(
                "SELECT privacy.create_login(%s, %s, %s, %s)", (login, role, password, organization_id)
            )
    parts = urlsplit(admin_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return login, urlunsplit(parts._replace(netloc=f"{quote(login)}:{quote(password)}@{host}"))


def drop_logins(admin_url: str, logins: Iterable[str]) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for login in logins:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(login)))


def kill_group(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM to the process group ``process`` leads (started with ``start_new_session``), SIGKILL to what is
    left of the group after ``timeout`` seconds, and a last SIGKILL to the group anyway: children that
    outlived their leader (a Celery pool process, a task's supervisor) are still in it."""
    if process.poll() is None:
        _signal_group(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    _signal_group(process.pid, signal.SIGKILL)
    process.wait(timeout=timeout)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
