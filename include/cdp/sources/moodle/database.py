"""Moodle read from its own database: the route a stock Moodle (3.11 to 4.5 and later) supports with setup only.

Moodle's core web services have no paged, modified-since listing of users or enrolments and no counts, so
the analytics route is a read-only login on the LMS's database (SETUP.md: "Database route"). The tables and
columns read are Moodle's own (``lib/db/install.xml``; a trimmed copy with its provenance is kept under
``tests/vendor_material/moodle/``), with the site's table prefix (``mdl_`` unless the site's
``$CFG->prefix`` says otherwise):

- ``users``: ``user`` by ``timemodified`` (Moodle sets it on every profile update and on deletion), with the
  custom profile fields (``user_info_data`` joined to ``user_info_field``) as ``customfields`` [{shortname,
  value}], the shape core web services use. A user with ``deleted = 1`` is emitted as it is: Moodle keeps
  the row, scrambles username and email and stamps ``timemodified``; the users SQL turns it into an audited
  soft delete of the Moodle identity in ``core`` (revision 0023).
- ``enrollments``: ``user_enrolments`` joined to its enrolment instance ``enrol`` (for ``courseid`` and the
  enrolment method), by ``user_enrolments.timemodified``.
- ``course_completions``: ``course_completions`` with a ``timecompleted`` (a course not yet completed has
  NULL there), by ``timecompleted``.
- ``courses``: ``course`` without the site's front page (``format = 'site'``), read in full (courses are
  few), counted by ``timemodified``.

A read is one query over [since, until) ordered by (cursor time, id), streamed in pages from a server-side
cursor in one read-only transaction (one consistent snapshot; Moodle indexes neither user.timemodified nor
user_enrolments.timemodified, so paging by keyset would scan the table once per page); ``count`` asks the
same database for the same window, so the count diff compares like with like.
Only PostgreSQL is implemented; a MySQL/MariaDB Moodle needs a MySQL driver and the JSON aggregation of
the profile fields written with ``JSON_ARRAYAGG`` (MySQL 5.7.22+, MariaDB 10.5+): see SETUP.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from cdp.sources.base import AuthError, ContractError, SourceError, SourceSettings, TransientError, epoch

SOURCE = "moodle"
DATABASE_SCHEMES = ("postgresql://", "postgres://")
MYSQL_SCHEMES = ("mysql://", "mariadb://", "mysqli://")
PREFIX_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,20}$")
NEVER = 2**62  # an upper bound past any epoch second, for an open window

# What each stream reads: Moodle table -> columns (checked by check.py; a missing one is a setup finding).
TABLES_READ: dict[str, tuple[str, ...]] = {
    "user": (
        "id", "username", "firstname", "lastname", "email", "country", "institution", "department", "auth",
        "suspended", "deleted", "confirmed", "timecreated", "timemodified",
    ),
    "user_info_field": ("id", "shortname", "name", "datatype", "sortorder"),
    "user_info_data": ("userid", "fieldid", "data"),
    "course": (
        "id", "category", "shortname", "fullname", "idnumber", "format", "startdate", "enddate", "visible",
        "timecreated", "timemodified",
    ),
    "enrol": ("id", "enrol", "courseid", "status"),
    "user_enrolments": (
        "id", "status", "enrolid", "userid", "timestart", "timeend", "modifierid", "timecreated", "timemodified",
    ),
    "course_completions": ("id", "userid", "course", "timeenrolled", "timestarted", "timecompleted", "reaggregate"),
}  # fmt: skip

# The site's guest account is a Moodle user row, not a learner.
_USERS = """
SELECT u.id, u.username, u.firstname, u.lastname, u.email, u.country, u.institution, u.department, u.auth,
       u.suspended, u.deleted, u.confirmed, u.timecreated, u.timemodified,
       coalesce((SELECT json_agg(json_build_object('shortname', f.shortname, 'value', d.data,
                                                   'name', f.name, 'type', f.datatype)
                                 ORDER BY f.sortorder, f.id)
                 FROM {user_info_data} d JOIN {user_info_field} f ON f.id = d.fieldid
                 WHERE d.userid = u.id), '[]'::json) AS customfields
FROM {user} u
WHERE u.username <> 'guest' AND {window}
"""
_ENROLMENTS = """
SELECT ue.id, ue.status, ue.enrolid, e.enrol, e.courseid, ue.userid, ue.timestart, ue.timeend, ue.modifierid,
       ue.timecreated, ue.timemodified
FROM {user_enrolments} ue
JOIN {enrol} e ON e.id = ue.enrolid
WHERE {window}
"""
_COMPLETIONS = """
SELECT cc.id, cc.userid, cc.course, cc.timeenrolled, cc.timestarted, cc.timecompleted, cc.reaggregate
FROM {course_completions} cc
WHERE cc.timecompleted IS NOT NULL AND {window}
"""
_COURSES = """
SELECT c.id, c.category, c.shortname, c.fullname, c.idnumber, c.format, c.startdate, c.enddate, c.visible,
       c.timecreated, c.timemodified
FROM {course} c
WHERE c.format <> 'site' AND {window}
"""


def is_database_url(base_url: str) -> bool:
    return base_url.startswith(DATABASE_SCHEMES + MYSQL_SCHEMES)


class MoodleDatabase:
    """A read-only login on the LMS's database; every read runs in its own read-only transaction."""

    def __init__(self, settings: SourceSettings) -> None:
        if settings.base_url.startswith(MYSQL_SCHEMES):
            raise SourceError(
                "moodle: a MySQL/MariaDB Moodle database is not supported yet (PostgreSQL only); "
                "see SETUP.md, 'Database route', for what it needs"
            )
        prefix = str(settings.extra.get("table_prefix", "mdl_"))
        if not PREFIX_PATTERN.match(prefix):
            raise SourceError(
                f"moodle: table_prefix {prefix!r} is not a Moodle table prefix (letters, digits, _)"
            )
        self.prefix = prefix
        self.schema = settings.extra.get("schema")  # a PostgreSQL schema other than the login's search_path
        extra = {"password": settings.credential} if settings.credential else {}
        self.conninfo = make_conninfo(
            settings.base_url,
            application_name="cdp_sync",
            connect_timeout=int(settings.extra.get("connect_timeout", 10)),
            **extra,
        )

    def table(self, name: str) -> sql.Identifier:
        return (
            sql.Identifier(self.schema, self.prefix + name)
            if self.schema
            else sql.Identifier(self.prefix + name)
        )

    def connect(self) -> psycopg.Connection:
        try:
            conn = psycopg.connect(self.conninfo, row_factory=dict_row)
        except psycopg.OperationalError as error:
            text = str(error)
            if "password authentication failed" in text or "no password supplied" in text:
                raise AuthError(
                    "moodle: the database refused the login (password authentication failed)"
                ) from None
            raise TransientError(f"moodle: cannot reach the database: {type(error).__name__}") from None
        conn.read_only = True
        return conn

    def fetch(self, query: sql.Composable, params: dict[str, Any]) -> list[dict[str, Any]]:
        with self.connect() as conn, _translated_errors():
            rows = conn.execute(query, params).fetchall()
            conn.rollback()  # read-only: nothing to keep
        return rows

    def pages(self, query: sql.Composable, params: dict[str, Any], page_size: int) -> Iterator[list[dict]]:
        """One server-side cursor in one read-only transaction: a single scan and sort of the window (Moodle
        has no index on user.timemodified or user_enrolments.timemodified), one consistent snapshot, pages
        streamed to the caller."""
        with self.connect() as conn, _translated_errors():
            with conn.cursor(name="cdp_moodle_read") as cursor:
                cursor.execute(query, params)
                while page := cursor.fetchmany(page_size):
                    yield page
            conn.rollback()


@contextmanager
def _translated_errors() -> Iterator[None]:
    try:
        yield
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as error:
        raise ContractError(f"moodle: the database lacks a table or column we read: {error}") from None
    except psycopg.errors.InsufficientPrivilege as error:
        raise AuthError(f"moodle: the database login may not read: {error}") from None
    except psycopg.OperationalError as error:
        raise TransientError(f"moodle: database read failed: {type(error).__name__}") from None


def _window(alias: str, cursor: str) -> sql.Composed:
    column = sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(cursor))
    return sql.SQL("{c} >= %(since)s AND {c} < %(until)s").format(c=column)


class MoodleTableStream:
    """One Moodle table (or join) read in (cursor, id) order within [since, until)."""

    source = SOURCE
    primary_key = "id"

    def __init__(
        self,
        database: MoodleDatabase,
        name: str,
        template: str,
        tables: tuple[str, ...],
        alias: str,
        cursor_field: str,
        page_size: int = 1000,
        *,
        incremental: bool = True,
    ) -> None:
        self.database, self.name, self.template, self.tables = database, name, template, tables
        self.alias, self.count_cursor, self.page_size = alias, cursor_field, page_size
        self.cursor_field: str | None = cursor_field if incremental else None

    def _query(self, window: sql.Composable) -> sql.Composed:
        return sql.SQL(self.template).format(
            window=window, **{t: self.database.table(t) for t in self.tables}
        )

    def read(self, since: datetime | None, until: datetime | None) -> Iterator[list[dict]]:
        if self.cursor_field is None:  # a full read (courses): every row, whatever the window
            since, until = None, None
        query = sql.SQL("{} ORDER BY {a}.{c}, {a}.id").format(
            self._query(_window(self.alias, self.count_cursor)),
            a=sql.Identifier(self.alias),
            c=sql.Identifier(self.count_cursor),
        )
        params = {"since": epoch(since) or 0, "until": epoch(until) or NEVER}
        yield from self.database.pages(query, params, self.page_size)

    def count(self, since: datetime, until: datetime) -> int:
        # A deleted user is a row Moodle keeps (deleted = 1) but no longer counts as a user; the warehouse counts
        # it apart too (ops.count_window's deleted_count), so the two sides compare like with like.
        alive = sql.SQL(" WHERE counted.deleted = 0") if self.name == "users" else sql.SQL("")
        query = sql.SQL("SELECT count(*) AS n FROM ({}) counted{}").format(
            self._query(_window(self.alias, self.count_cursor)), alive
        )
        rows = self.database.fetch(query, {"since": epoch(since) or 0, "until": epoch(until) or NEVER})
        return int(rows[0]["n"])


def database_streams(settings: SourceSettings) -> list[MoodleTableStream]:
    database = MoodleDatabase(settings)
    size = int(settings.extra.get("page_size", 1000))
    return [
        MoodleTableStream(
            database,
            "users",
            _USERS,
            ("user", "user_info_data", "user_info_field"),
            "u",
            "timemodified",
            size,
        ),
        MoodleTableStream(
            database, "courses", _COURSES, ("course",), "c", "timemodified", size, incremental=False
        ),
        MoodleTableStream(
            database, "enrollments", _ENROLMENTS, ("user_enrolments", "enrol"), "ue", "timemodified", size
        ),
        MoodleTableStream(
            database, "course_completions", _COMPLETIONS, ("course_completions",), "cc", "timecompleted", size
        ),
    ]
