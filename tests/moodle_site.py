"""A small Moodle site for tests: ``mdl_*`` tables built from Moodle's own install.xml (kept under
tests/vendor_material/moodle/), filled the way Moodle's own code fills them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from cdp.sources.base import SourceSettings
from cdp_sandbox.moodle_schema import create_tables

T0 = int(datetime(2024, 3, 1, tzinfo=UTC).timestamp())
DAY = 86_400
PROFILE_FIELDS = (  # (id, shortname, name, datatype): the organisation's fields (SETUP.md)
    (1, "dateofbirth", "Date of birth", "text"),
    (2, "parentalconsent", "Parental consent", "menu"),
    (3, "marketingconsent", "I agree to receive news by email", "checkbox"),
    (4, "phone", "Phone", "text"),
)


def insert(conn: psycopg.Connection, table: str, **values: Any) -> None:
    conn.execute(
        sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier("mdl_" + table),
            sql.SQL(", ").join(map(sql.Identifier, values)),
            sql.SQL(", ").join([sql.Placeholder()] * len(values)),
        ),
        tuple(values.values()),
    )


def add_user(
    conn: psycopg.Connection,
    user_id: int,
    username: str,
    firstname: str,
    lastname: str,
    email: str,
    created: int,
    *,
    modified: int | None = None,
    profile: dict[str, str] | None = None,
    deleted: int = 0,
) -> None:
    insert(
        conn, "user", id=user_id, auth="manual", confirmed=1, deleted=deleted, mnethostid=1, username=username,
        password="x", firstname=firstname, lastname=lastname, email=email, country="GB", timecreated=created,
        timemodified=modified or created,
    )  # fmt: skip
    for field_id, shortname, _, _ in PROFILE_FIELDS:
        if profile and shortname in profile:
            insert(conn, "user_info_data", userid=user_id, fieldid=field_id, data=profile[shortname])


def delete_user(conn: psycopg.Connection, user_id: int, when: int) -> None:
    """What Moodle's delete_user() leaves in the user row: deleted = 1, username and email scrambled, the
    enrolments removed, timemodified stamped (lib/moodlelib.php)."""
    conn.execute(
        "UPDATE mdl_user SET deleted = 1, username = email || '.' || %s, email = md5(username), idnumber = '',"
        " picture = 0, timemodified = %s WHERE id = %s",
        (when, when, user_id),
    )
    conn.execute("DELETE FROM mdl_user_enrolments WHERE userid = %s", (user_id,))


def build_site(url: str) -> None:
    """Guest, admin, three learners (one deleted before any sync), two courses, enrolments, a completion."""
    with psycopg.connect(url, autocommit=True) as conn:
        created = create_tables(conn)
        for field_id, shortname, name, datatype in PROFILE_FIELDS:
            insert(conn, "user_info_field", id=field_id, shortname=shortname, name=name, datatype=datatype)
        add_user(conn, 1, "guest", "Guest user", " ", "root@localhost", T0 - 400 * DAY)
        add_user(conn, 2, "admin", "Admin", "User", "admin@example.org", T0 - 400 * DAY)
        add_user(
            conn, 3, "ada", "Ada", "Lovelace", "ada@example.org", T0,
            profile={"dateofbirth": "2001-12-10", "parentalconsent": "", "marketingconsent": "1", "phone": ""},
        )  # fmt: skip
        add_user(
            conn, 4, "blaise", "Blaise", "Pascal", "blaise@example.org", T0 + 3600,
            profile={"dateofbirth": "2003-06-19", "marketingconsent": "0"},
        )  # fmt: skip
        add_user(conn, 5, "carl", "Carl", "Gauss", "carl@example.org", T0 + 7200)
        delete_user(conn, 5, T0 + 2 * 3600 + 60)  # created and deleted before the first sync
        insert(conn, "course", id=1, category=0, fullname="Site", shortname="site", idnumber="", format="site",
               lang="", calendartype="", theme="", timecreated=T0 - 400 * DAY, timemodified=T0 - 400 * DAY)  # fmt: skip
        insert(conn, "course", id=2, category=1, fullname="Python basics", shortname="PY-01", idnumber="",
               lang="", calendartype="", theme="", startdate=T0 - 10 * DAY, enddate=T0 + 80 * DAY,
               timecreated=T0 - 20 * DAY, timemodified=T0 - 20 * DAY)  # fmt: skip
        insert(
            conn,
            "enrol",
            id=1,
            enrol="manual",
            courseid=2,
            timecreated=T0 - 20 * DAY,
            timemodified=T0 - 20 * DAY,
        )
        insert(
            conn,
            "enrol",
            id=2,
            enrol="self",
            courseid=2,
            timecreated=T0 - 20 * DAY,
            timemodified=T0 - 20 * DAY,
        )
        # Blaise's self enrolment has timestart 0: Moodle's "no start restriction".
        for ue_id, enrol_id, user_id, at, start in ((1, 1, 3, T0 + 600, T0 + 600), (2, 2, 4, T0 + 4000, 0)):
            insert(conn, "user_enrolments", id=ue_id, enrolid=enrol_id, userid=user_id, timestart=start, timeend=0,
                   modifierid=2, timecreated=at, timemodified=at)  # fmt: skip
        insert(conn, "course_completions", id=1, userid=3, course=2, timeenrolled=T0 + 600, timestarted=T0 + 700,
               timecompleted=T0 + 5 * 3600)  # fmt: skip
        insert(conn, "course_completions", id=2, userid=4, course=2, timeenrolled=T0 + 4000, timestarted=0)
        for table in created:  # rows were given their ids: move each table's sequence past them
            conn.execute(
                sql.SQL(
                    "SELECT setval(pg_get_serial_sequence({t}, 'id'), (SELECT coalesce(max(id), 0) + 1 FROM {i}),"
                    " false)"
                ).format(t=sql.Literal(table), i=sql.Identifier(table))
            )


def settings(url: str, **extra: Any) -> SourceSettings:
    return SourceSettings(url, "", extra)
