"""A merge neither makes an exact key ambiguous nor unambiguous: the syncs' exact-key resolution counts a
person merged into another as its survivor. Otherwise a merge of one holder of a shared key with a third
person would let the sync join the next record to the other holder, a link nothing could undo (the
unmerge follows the absorbed person's identities only), and a record of an absorbed person would become a
new duplicate instead of joining the survivor."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from cdp.identity.merges import merge_people, unmerge
from cdp.sync.engine import sync_stream
from cdp.sync.specs import spec_for
from cdp.warehouse import Actor, transaction

ACTOR = Actor("pytest")
END = datetime(2030, 1, 1, tzinfo=UTC)


class Records:
    """A source answering with fixed records: the sync's own landing, validation and transforms run."""

    cursor_field = None

    def __init__(self, source: str, name: str, primary_key: str, records: list[dict]) -> None:
        self.source, self.name, self.primary_key, self.records = source, name, primary_key, records

    def read(self, since: datetime | None, until: datetime | None) -> Iterator[list[dict]]:
        yield self.records

    def count(self, since: datetime, until: datetime) -> int:
        return len(self.records)


def _sync(url: str, source: str, stream: str, records: list[dict], run_id: str) -> None:
    sync_stream(url, Records(source, stream, "id", records), spec_for(source, stream), actor=ACTOR,
                run_id=run_id, interval_end=END)  # fmt: skip


def _user(user_id: int, given: str, family: str, email: str) -> dict:
    return {"id": user_id, "firstname": given, "lastname": family, "email": email, "country": "GB",
            "timemodified": 1_700_000_000 + user_id, "customfields": []}  # fmt: skip


def _ticket(ticket_id: int, requester_id: int, name: str, email: str) -> dict:
    stamp = "2026-06-01T10:00:00Z"
    return {"id": ticket_id, "created_at": stamp, "updated_at": stamp, "status": "open",
            "subject": "Where is my certificate?", "requester_id": requester_id, "tags": [], "custom_fields": [],
            "requester": {"id": requester_id, "name": name, "email": email}}  # fmt: skip


def _ticket_person(conn: psycopg.Connection, ticket: int) -> str | None:
    row = conn.execute(
        "SELECT person_id::text FROM core.support_ticket WHERE source = 'zendesk' AND source_record_id = %s",
        (str(ticket),),
    ).fetchone()
    assert row is not None, f"ticket {ticket} did not land"
    return row[0]


def _person_of(conn: psycopg.Connection, source: str, record: str) -> str | None:
    row = conn.execute(
        "SELECT person_id::text FROM core.person_source_id WHERE source = %s AND source_record_id = %s",
        (source, record),
    ).fetchone()
    return row[0] if row else None


@pytest.fixture
def people(warehouse_url: str) -> dict[str, str]:
    """Two learners sharing an email and a full name (never joined: one batch), a third learner, and a
    fourth alone with her key."""
    _sync(warehouse_url, "moodle", "users", [
        _user(11, "Ana", "Lopez", "family.lopez@example.org"),
        _user(12, "Ana", "Lopez", "family.lopez@example.org"),
        _user(13, "Zoe", "Brown", "zoe.brown@example.org"),
        _user(14, "Mia", "Khan", "mia.khan@example.org"),
    ], "users-1")  # fmt: skip
    with psycopg.connect(warehouse_url) as conn:
        found = {key: _person_of(conn, "moodle.user", str(user)) for key, user in
                 (("ana_1", 11), ("ana_2", 12), ("zoe", 13), ("mia", 14))}  # fmt: skip
    assert None not in found.values() and len(set(found.values())) == 4
    return found  # type: ignore[return-value]


def test_a_key_shared_by_two_people_stays_ambiguous_when_one_is_merged_into_a_third(
    warehouse_url: str, people: dict[str, str]
) -> None:
    with transaction(warehouse_url, ACTOR) as conn:
        merge_id = merge_people(conn, people["zoe"], people["ana_2"], reason="review")
    family = "family.lopez@example.org"
    _sync(warehouse_url, "zendesk", "tickets", [_ticket(901, 5001, "Ana Lopez", family)], "t-1")
    _sync(warehouse_url, "moodle", "users", [_user(21, "Ana", "Lopez", family)], "users-2")
    with psycopg.connect(warehouse_url) as conn:
        assert _ticket_person(conn, 901) is None  # neither Ana nor (through her) Zoe: two people hold the key
        assert _person_of(conn, "zendesk.user", "5001") is None
        joined = _person_of(conn, "moodle.user", "21")
        assert joined not in set(people.values())  # a new person, for the dedupe to weigh
    unmerge(warehouse_url, ACTOR, merge_id, reason="test")
    with psycopg.connect(warehouse_url) as conn:
        assert _ticket_person(conn, 901) is None


def test_a_record_of_an_absorbed_person_joins_the_survivor_instead_of_making_a_duplicate(
    warehouse_url: str, people: dict[str, str]
) -> None:
    with transaction(warehouse_url, ACTOR) as conn:
        merge_people(conn, people["zoe"], people["mia"], reason="review")
    _sync(
        warehouse_url, "zendesk", "tickets", [_ticket(902, 5002, "Mia Khan", "mia.khan@example.org")], "t-2"
    )
    _sync(warehouse_url, "moodle", "users", [_user(22, "Mia", "Khan", "mia.khan@example.org")], "users-3")
    with psycopg.connect(warehouse_url) as conn:
        assert _ticket_person(conn, 902) == people["zoe"]
        assert _person_of(conn, "moodle.user", "22") == people["zoe"]  # not a new duplicate of Mia
        assert conn.execute("SELECT count(*) FROM core.person").fetchone() == (4,)
