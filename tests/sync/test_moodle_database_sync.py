"""Moodle's database route end to end: a Moodle database built from Moodle's install.xml syncs users,
courses, enrolments and completions into core incrementally; a deleted Moodle user becomes an audited soft
delete, and the count diff counts deletions explicitly."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from moodle_site import DAY, T0, add_user, build_site, delete_user, settings

from cdp.quality.count_diff import check_stream
from cdp.sources import registry
from cdp.sync.engine import sync_stream
from cdp.sync.specs import spec_for
from cdp.warehouse import Actor

ACTOR = Actor("pytest")
ORDER = ("moodle.users", "moodle.courses", "moodle.enrollments", "moodle.course_completions")


def at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@pytest.fixture
def moodle_url(empty_database_url: str) -> Iterator[str]:
    build_site(empty_database_url)
    yield empty_database_url


def sync_all(warehouse_url: str, moodle_url: str, end: int, run: str) -> dict[str, int]:
    landed = {}
    for key in ORDER:
        spec = spec_for(*key.split("."))
        stream = registry.stream("moodle", spec.stream, settings(moodle_url))
        result = sync_stream(warehouse_url, stream, spec, actor=ACTOR, run_id=run, interval_end=at(end))
        landed[key] = result.rows_upserted
    return landed


def identities(warehouse_url: str) -> dict[str, datetime | None]:
    with psycopg.connect(warehouse_url) as conn:
        return dict(
            conn.execute(
                "SELECT source_record_id, deleted_at FROM core.person_source_id WHERE source = 'moodle.user'"
            ).fetchall()
        )


def test_a_moodle_database_syncs_into_core_and_a_deleted_user_is_an_audited_soft_delete(
    warehouse_url: str, moodle_url: str
) -> None:
    first = sync_all(warehouse_url, moodle_url, T0 + DAY, "run-1")
    assert first == {
        "moodle.users": 4,
        "moodle.courses": 1,
        "moodle.enrollments": 2,
        "moodle.course_completions": 1,
    }
    # Admin, Ada and Blaise are people; Carl was deleted before any sync: kept as a deletion, not a person.
    assert identities(warehouse_url) == {"2": None, "3": None, "4": None}
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute(
            "SELECT source, source_record_id, deleted_at FROM core.source_deletion"
        ).fetchall() == [("moodle.user", "5", at(T0 + 2 * 3600 + 60))]
        assert conn.execute(
            "SELECT p.given_name, c.code, k.completed_at FROM core.course_completion k"
            " JOIN core.person p ON p.person_id = k.person_id JOIN core.course c ON c.course_id = k.course_id"
        ).fetchall() == [("Ada", "PY-01", at(T0 + 5 * 3600))]
        assert conn.execute("SELECT count(*) FROM ops.quarantine").fetchone() == (0,)
        # timestart 0 is Moodle's "no start restriction": the enrolment dates from its creation.
        assert conn.execute(
            "SELECT p.given_name, e.enrolled_at FROM core.enrollment e JOIN core.person p USING (person_id)"
            " ORDER BY e.enrolled_at"
        ).fetchall() == [("Ada", at(T0 + 600)), ("Blaise", at(T0 + 4000))]
        blaise = conn.execute(
            "SELECT person_id FROM core.person_source_id WHERE source = 'moodle.user' AND source_record_id = '4'"
        ).fetchone()[0]

    # Blaise is deleted in Moodle; a new learner arrives. The next sync reads only what changed.
    with psycopg.connect(moodle_url, autocommit=True) as conn:
        delete_user(conn, 4, T0 + DAY + 600)
        add_user(conn, 6, "dora", "Dora", "Maar", "dora@example.org", T0 + DAY + 700)
    second = sync_all(warehouse_url, moodle_url, T0 + 2 * DAY, "run-2")
    assert second["moodle.users"] == 2  # Blaise (deleted) and Dora: the overlap window re-reads nothing older
    assert identities(warehouse_url) == {"2": None, "3": None, "4": at(T0 + DAY + 600), "6": None}
    with psycopg.connect(warehouse_url) as conn:
        # The person and their history stay; the deletion is in the audit trail like every change to core.
        assert conn.execute(
            "SELECT given_name FROM core.person WHERE person_id = %s", (blaise,)
        ).fetchone() == ("Blaise",)
        assert conn.execute("SELECT count(*) FROM core.enrollment").fetchone() == (2,)
        # (source_record_id is personal data for sources keyed by email: the event's public image has the person)
        events = conn.execute(
            "SELECT before -> 0 ->> 'deleted_at', after -> 0 ->> 'person_id' FROM audit.audit_events"
            " WHERE entity_type = 'core.person_source_id' AND action = 'update'"
            "   AND after -> 0 ->> 'deleted_at' IS NOT NULL"
        ).fetchall()
        assert events == [(None, str(blaise))]
        assert conn.execute(
            "SELECT count(*) FROM audit.audit_events WHERE entity_type = 'core.source_deletion'"
        ).fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM ops.quarantine").fetchone() == (0,)

    # A re-run of the same interval changes nothing.
    sync_all(warehouse_url, moodle_url, T0 + 2 * DAY, "run-3")
    assert identities(warehouse_url) == {"2": None, "3": None, "4": at(T0 + DAY + 600), "6": None}
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("SELECT count(*) FROM core.source_deletion").fetchone() == (1,)


def test_the_count_diff_counts_deleted_users_apart_and_sees_what_the_sync_missed(
    warehouse_url: str, moodle_url: str
) -> None:
    sync_all(warehouse_url, moodle_url, T0 + DAY, "run-1")
    spec = spec_for("moodle", "users")
    users = registry.stream("moodle", "users", settings(moodle_url))
    diff = check_stream(
        warehouse_url, spec, users, run_id="diff-1", window_start=at(T0), window_end=at(T0 + DAY), actor=ACTOR
    )
    # Ada, Blaise and the deleted Carl reached the warehouse; Moodle counts two users, the warehouse holds two
    # people and Carl as a deletion: nothing lost, nothing never fetched.
    assert (diff.source_count, diff.raw_count, diff.core_count, diff.deleted_count, diff.never_fetched,
            diff.status) == (2, 3, 2, 1, 0, "ok")  # fmt: skip

    # Rows committed late with a modification time the sync had already passed (a long-running enrolment
    # import): the same database now counts more than the warehouse read, and the diff says where.
    enrolments_spec = spec_for("moodle", "enrollments")
    enrolments = registry.stream("moodle", "enrollments", settings(moodle_url))
    with psycopg.connect(moodle_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO mdl_user_enrolments (enrolid, userid, timestart, timeend, modifierid, timecreated,"
            " timemodified) VALUES (1, 4, %s, 0, 2, %s, %s)",
            (T0 + 5000, T0 + 5000, T0 + 5000),
        )
    diff = check_stream(
        warehouse_url, enrolments_spec, enrolments, run_id="diff-2", window_start=at(T0), window_end=at(T0 + DAY),
        actor=ACTOR,
    )  # fmt: skip
    assert (diff.source_count, diff.core_count, diff.never_fetched, diff.loss_location) == (
        3,
        2,
        1,
        "never_fetched",
    )
