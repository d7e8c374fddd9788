"""Person resolution is serialised across writers: two people streams syncing at once make the same people
as one of them after the other would, and a stream that makes no people is never held up by them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from cdp.sources import registry
from cdp.sync.engine import sync_stream
from cdp.sync.specs import spec_for
from cdp.warehouse import Actor
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer

ACTOR = Actor("pytest")
END = datetime(2030, 1, 1, tzinfo=UTC)
PEOPLE_STREAMS = ("moodle.users", "salesforce.Contact")  # the same humans, by normalised email and name


@pytest.fixture
def sandbox(tmp_path) -> Iterator[SandboxServer]:
    with SandboxServer(World(seed=11, learners=300), ledger_folder=tmp_path / "ledger-drop") as server:
        yield server


def _sync(url: str, sandbox: SandboxServer, key: str) -> None:
    spec = spec_for(*key.split("."))
    stream = registry.stream(spec.source, spec.stream, sandbox.settings(spec.source))
    sync_stream(url, stream, spec, actor=ACTOR, run_id=f"run-{key}", interval_end=END)


def _people(url: str) -> list[tuple[str, str]]:
    """Each person as the set of source records resolved to it (person ids differ between databases)."""
    with psycopg.connect(url) as conn:
        return sorted(
            conn.execute(
                "SELECT string_agg(source || ':' || source_record_id, ',' ORDER BY source, source_record_id),"
                " count(*)::text FROM core.person_source_id GROUP BY person_id"
            ).fetchall()
        )


def _waiting_on_advisory(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
            " WHERE l.locktype = 'advisory' AND NOT l.granted AND a.datname = current_database()"
        ).fetchone()[0]


def test_people_streams_at_once_make_the_people_one_after_the_other_does(
    warehouse_url: str, another_warehouse: Callable[[], str], sandbox: SandboxServer
) -> None:
    # Which stream the lock admits first is not fixed, and the order matters (records of one batch are
    # never joined to each other, but are joined to a person an earlier stream made), so the result must
    # equal one of the two serial orders: serialised, not interleaved.
    serial = []
    for order in (PEOPLE_STREAMS, PEOPLE_STREAMS[::-1]):
        url = another_warehouse()
        for key in order:
            _sync(url, sandbox, key)
        serial.append(_people(url))
    # Both streams pass landing and then queue for person resolution behind a lock the test holds, so
    # their resolution steps would overlap exactly if nothing serialised them.
    holder = psycopg.connect(warehouse_url)
    holder.execute("SELECT pg_advisory_xact_lock(hashtext('cdp.people'))")
    errors: list[BaseException] = []

    def run(key: str) -> None:
        try:
            _sync(warehouse_url, sandbox, key)
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(key,)) for key in PEOPLE_STREAMS]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while _waiting_on_advisory(warehouse_url) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _waiting_on_advisory(warehouse_url) == 2, "both people streams should wait for the people lock"
    # A stream that makes no people is not held up meanwhile.
    _sync(warehouse_url, sandbox, "moodle.courses")
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("SELECT count(*) FROM core.course").fetchone()[0] > 0
        assert conn.execute("SELECT count(*) FROM core.person").fetchone()[0] == 0
    holder.rollback()
    holder.close()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    together = _people(warehouse_url)
    assert together in serial
    # The two sources really do describe shared humans, so the lock is what kept them single.
    assert any(",salesforce.contact:" in records and "moodle.user:" in records for records, _ in together)
