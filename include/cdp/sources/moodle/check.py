"""``cdp sources check`` for Moodle: can the connection's login read every table and column the sync reads,
and only read them? Each finding names the SETUP.md section that fixes it."""

from __future__ import annotations

import psycopg
from psycopg import sql

from cdp.sources.base import SourceError, SourceSettings
from cdp.sources.check import Finding
from cdp.sources.moodle.database import TABLES_READ, MoodleDatabase, is_database_url

SOURCE = "moodle"
SETUP_DATABASE = "SETUP.md: Database route (a read-only login with SELECT on the listed tables)"
SETUP_FIELDS = "SETUP.md: Custom user profile fields"
# The organisation's own profile fields the users SQL reads (shortnames; not in a stock Moodle).
PROFILE_FIELDS = ("dateofbirth", "parentalconsent", "marketingconsent", "phone")


def setup_findings(settings: SourceSettings) -> list[Finding]:
    if not is_database_url(settings.base_url):
        if settings.extra.get("route") == "local_cdp":
            return [
                Finding(
                    SOURCE, "route local_cdp",
                    "the local_cdp web-service functions exist in no stock Moodle (only the sandbox serves them)",
                    SETUP_DATABASE, "warning",
                )
            ]  # fmt: skip
        return [
            Finding(SOURCE, "connection host", "not a postgresql:// URL of the LMS database", SETUP_DATABASE)
        ]
    try:
        database = MoodleDatabase(settings)
        conn = database.connect()
    except SourceError as error:
        return [Finding(SOURCE, "connection", str(error), SETUP_DATABASE)]
    with conn:
        findings = _table_findings(conn, database)
        findings += _write_findings(conn, database)
        if not any(f.item.startswith("table user_info") for f in findings):
            findings += _profile_field_findings(conn, database)
        conn.rollback()
    return findings


def _relation(conn: psycopg.Connection, database: MoodleDatabase, table: str) -> int | None:
    name = database.table(table).as_string(conn)
    row = conn.execute("SELECT to_regclass(%s)::oid AS oid", (name,)).fetchone()
    return row["oid"] if row else None


def _table_findings(conn: psycopg.Connection, database: MoodleDatabase) -> list[Finding]:
    findings = []
    for table, columns in TABLES_READ.items():
        label = f"table {database.prefix}{table}"
        oid = _relation(conn, database, table)
        if oid is None:
            findings.append(
                Finding(
                    SOURCE, label, "does not exist (or is outside the login's search_path)", SETUP_DATABASE
                )
            )
            continue
        present = {
            row["attname"]
            for row in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped",
                (oid,),
            )
        }
        for column in columns:
            if column not in present:
                findings.append(
                    Finding(
                        SOURCE, f"column {database.prefix}{table}.{column}", "does not exist", SETUP_DATABASE
                    )
                )
            elif not conn.execute(
                "SELECT has_column_privilege(%s, %s, 'SELECT') AS ok", (oid, column)
            ).fetchone()["ok"]:
                findings.append(
                    Finding(
                        SOURCE,
                        f"column {database.prefix}{table}.{column}",
                        "the login may not read it",
                        SETUP_DATABASE,
                    )
                )
    return findings


def _write_findings(conn: psycopg.Connection, database: MoodleDatabase) -> list[Finding]:
    role = conn.execute(
        "SELECT current_user AS name, rolsuper FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    if role and role["rolsuper"]:
        return [
            Finding(
                SOURCE,
                "database login",
                f"{role['name']} is a superuser: it can change the LMS",
                SETUP_DATABASE,
                "warning",
            )
        ]
    writable = []
    for table in TABLES_READ:
        oid = _relation(conn, database, table)
        if (
            oid is not None
            and conn.execute(
                "SELECT has_table_privilege(%s, 'INSERT') OR has_table_privilege(%s, 'UPDATE')"
                " OR has_table_privilege(%s, 'DELETE') OR has_table_privilege(%s, 'TRUNCATE') AS can_write",
                (oid, oid, oid, oid),
            ).fetchone()["can_write"]
        ):
            writable.append(database.prefix + table)
    if not writable:
        return []
    return [
        Finding(
            SOURCE,
            "database login",
            f"can write to {', '.join(writable)}: it should only read",
            SETUP_DATABASE,
            "warning",
        )
    ]


def _profile_field_findings(conn: psycopg.Connection, database: MoodleDatabase) -> list[Finding]:
    query = sql.SQL("SELECT shortname FROM {} WHERE shortname = ANY(%s)").format(
        database.table("user_info_field")
    )
    try:
        found = {row["shortname"] for row in conn.execute(query, (list(PROFILE_FIELDS),))}
    except psycopg.Error as error:
        conn.rollback()
        return [
            Finding(
                SOURCE, f"table {database.prefix}user_info_field", f"not readable: {error}", SETUP_DATABASE
            )
        ]
    return [
        Finding(
            SOURCE,
            f"profile field {shortname}",
            "no custom user profile field with this shortname",
            SETUP_FIELDS,
        )
        for shortname in PROFILE_FIELDS
        if shortname not in found
    ]
