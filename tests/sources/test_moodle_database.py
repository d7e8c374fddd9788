"""Moodle's database route against tables built from Moodle's own install.xml: the DDL, the reads (windows,
keyset pages, deleted users, profile fields), the counts, read-only access, and the setup check."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from moodle_site import DAY, T0, build_site, delete_user, settings

from cdp.sources.base import ContractError, SourceError
from cdp.sources.moodle import streams
from cdp.sources.moodle.check import setup_findings
from cdp.sources.moodle.database import MoodleDatabase
from cdp.sources.registry import stream
from cdp_sandbox.moodle_schema import INSTALL_XML


def as_login(url: str, login: str, password: str = "") -> str:
    """The same database's URL for another login."""
    parts = urlsplit(url)
    credentials = f"{login}:{password}" if password else login
    return urlunsplit(parts._replace(netloc=f"{credentials}@{parts.hostname}:{parts.port}"))


def at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def read_all(url: str, name: str, since: int | None = None, until: int | None = None, **extra) -> list[dict]:
    found = stream("moodle", name, settings(url, **extra))
    return [
        r for page in found.read(at(since) if since else None, at(until) if until else None) for r in page
    ]


@pytest.fixture
def moodle_url(empty_database_url: str) -> Iterator[str]:
    build_site(empty_database_url)
    yield empty_database_url


def test_tables_are_built_from_moodles_install_xml(moodle_url: str) -> None:
    declared = {
        table.get("NAME"): [field.get("NAME") for field in table.iter("FIELD")]
        for table in ElementTree.parse(INSTALL_XML).getroot().iter("TABLE")
    }
    with psycopg.connect(moodle_url) as conn:
        for table, fields in declared.items():
            columns = [
                row[0]
                for row in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
                    " ORDER BY ordinal_position",
                    ("mdl_" + table,),
                )
            ]
            assert columns == fields, table
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'mdl_user_enrolments'"
            ).fetchall()
        )
        assert types["timemodified"] == "bigint" and types["status"] == "bigint"
        # Moodle's defaults: a NOT NULL char gets '', user_enrolments.timeend its declared 2147483647.
        conn.execute("INSERT INTO mdl_user_enrolments (enrolid, userid) VALUES (1, 99)")
        assert conn.execute("SELECT timeend FROM mdl_user_enrolments WHERE userid = 99").fetchone() == (
            2147483647,
        )
        with pytest.raises(psycopg.errors.UniqueViolation):  # the install.xml's unique index enrolid-userid
            conn.execute("INSERT INTO mdl_user_enrolments (enrolid, userid) VALUES (1, 99)")


def test_users_come_with_their_profile_fields_and_without_the_guest(moodle_url: str) -> None:
    users = {u["id"]: u for u in read_all(moodle_url, "users")}
    assert sorted(users) == [2, 3, 4, 5]
    ada = users[3]
    assert ada["email"] == "ada@example.org" and ada["deleted"] == 0
    assert {f["shortname"]: f["value"] for f in ada["customfields"]} == {
        "dateofbirth": "2001-12-10", "parentalconsent": "", "marketingconsent": "1", "phone": "",
    }  # fmt: skip
    carl = users[5]
    assert carl["deleted"] == 1 and "@" not in carl["email"]  # Moodle scrambled it


def test_reads_are_windowed_and_paged_by_time_then_id(moodle_url: str) -> None:
    with psycopg.connect(moodle_url, autocommit=True) as conn:  # three users modified in the same second
        conn.execute("UPDATE mdl_user SET timemodified = %s WHERE id IN (2, 3, 4)", (T0 + 10,))
    paged = read_all(moodle_url, "users", page_size=1)
    assert [u["id"] for u in paged] == [2, 3, 4, 5]
    window = read_all(moodle_url, "users", since=T0 + 10, until=T0 + 11, page_size=2)
    assert [u["id"] for u in window] == [2, 3, 4]
    assert read_all(moodle_url, "users", since=T0 + 11, until=T0 + 2 * 3600) == []


def test_enrolments_carry_their_course_and_completions_need_a_completion_time(moodle_url: str) -> None:
    enrolments = read_all(moodle_url, "enrollments")
    assert [(e["id"], e["userid"], e["courseid"], e["enrol"]) for e in enrolments] == [
        (1, 3, 2, "manual"), (2, 4, 2, "self"),
    ]  # fmt: skip
    completions = read_all(moodle_url, "course_completions")
    assert [(c["id"], c["userid"], c["course"]) for c in completions] == [(1, 3, 2)]
    courses = read_all(moodle_url, "courses", since=T0 + DAY)  # a full read: the window does not apply
    assert [c["id"] for c in courses] == [2]  # not the site's front page


def test_counts_come_from_the_same_database_and_window(moodle_url: str) -> None:
    users = stream("moodle", "users", settings(moodle_url))
    assert users.count(at(T0), at(T0 + DAY)) == 2  # two learners; the deleted one is no longer a user
    assert stream("moodle", "enrollments", settings(moodle_url)).count(at(T0), at(T0 + 3600)) == 1
    assert stream("moodle", "course_completions", settings(moodle_url)).count(at(T0), at(T0 + DAY)) == 1
    with psycopg.connect(moodle_url, autocommit=True) as conn:
        delete_user(conn, 4, T0 + DAY + 5)  # its enrolment goes with it, as in Moodle
    assert users.count(at(T0), at(T0 + DAY)) == 1  # deleted: left out (ops.count_window counts it apart)
    assert stream("moodle", "enrollments", settings(moodle_url)).count(at(T0), at(T0 + DAY)) == 1


def test_the_connection_is_read_only(moodle_url: str) -> None:
    with (
        MoodleDatabase(settings(moodle_url)).connect() as conn,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        conn.execute("UPDATE mdl_user SET firstname = 'x'")


def test_a_missing_table_is_a_contract_error_and_a_wrong_prefix_is_refused(moodle_url: str) -> None:
    with pytest.raises(ContractError, match="lacks a table or column"):
        read_all(moodle_url, "users", table_prefix="m2_")
    with pytest.raises(SourceError, match="not a Moodle table prefix"):
        streams(settings(moodle_url, table_prefix="mdl; DROP"))
    with pytest.raises(SourceError, match="MySQL/MariaDB"):
        streams(settings("mysql://reader@lms-db/moodle"))
    with pytest.raises(SourceError, match="postgresql://"):
        streams(settings("https://lms.example.org"))  # core web services cannot list users by time


def test_setup_check_passes_a_read_only_login_and_names_what_is_missing(moodle_url: str) -> None:
    with psycopg.connect(moodle_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS cdp_moodle_reader")
        conn.execute("CREATE ROLE cdp_moodle_reader LOGIN PASSWORD 'reader'")
        conn.execute(
            "GRANT SELECT ON mdl_user, mdl_user_info_field, mdl_user_info_data, mdl_course, mdl_enrol,"
            " mdl_user_enrolments, mdl_course_completions TO cdp_moodle_reader"
        )
    reader = as_login(moodle_url, "cdp_moodle_reader", "reader")
    try:
        assert setup_findings(settings(reader)) == []
        # The superuser the tests connect as could change the LMS: a warning, not a failure.
        assert [(f.item, f.severity) for f in setup_findings(settings(moodle_url))] == [
            ("database login", "warning")
        ]
        with psycopg.connect(moodle_url, autocommit=True) as conn:
            conn.execute("GRANT UPDATE ON mdl_user TO cdp_moodle_reader")
            conn.execute("REVOKE SELECT ON mdl_course_completions FROM cdp_moodle_reader")
            conn.execute("ALTER TABLE mdl_user RENAME COLUMN deleted TO removed")
            conn.execute("DELETE FROM mdl_user_info_field WHERE shortname = 'parentalconsent'")
        findings = {(f.item, f.severity) for f in setup_findings(settings(reader))}
        assert findings == {
            ("column mdl_user.deleted", "missing"),
            ("column mdl_course_completions.id", "missing"),
            ("column mdl_course_completions.userid", "missing"),
            ("column mdl_course_completions.course", "missing"),
            ("column mdl_course_completions.timeenrolled", "missing"),
            ("column mdl_course_completions.timestarted", "missing"),
            ("column mdl_course_completions.timecompleted", "missing"),
            ("column mdl_course_completions.reaggregate", "missing"),
            ("database login", "warning"),
            ("profile field parentalconsent", "missing"),
        }
        wrong = setup_findings(settings(as_login(moodle_url, "nobody_here", "wrong")))
        assert [f.item for f in wrong] == ["connection"]
    finally:
        with psycopg.connect(moodle_url, autocommit=True) as conn:
            conn.execute("DROP OWNED BY cdp_moodle_reader")
            conn.execute("DROP ROLE cdp_moodle_reader")
