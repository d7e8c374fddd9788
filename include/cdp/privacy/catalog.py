"""Checks of the warehouse's own catalog: the access rules hold for every table and role, not just the
ones someone remembered. Each returns what breaks a rule (empty when all is well)."""

from __future__ import annotations

import psycopg

from cdp.paths import SQL_DIR

PRIVACY_SQL_DIR = SQL_DIR / "privacy"
# Admin runs data subject requests; the loader is the pipeline (its code is scanned by the tests).
CONSENT_AND_CONTACT_READERS = ("cdp_admin", "cdp_loader")


def _rows(conn: psycopg.Connection, name: str, params: dict | None = None) -> list[tuple]:
    with conn.cursor(row_factory=psycopg.rows.tuple_row) as cursor:
        return cursor.execute((PRIVACY_SQL_DIR / name).read_text(), params).fetchall()


def partner_tables_without_rls(conn: psycopg.Connection) -> list[str]:
    return [row[0] for row in _rows(conn, "partner_tables_without_rls.sql")]


def outreach_bypass_roles(conn: psycopg.Connection) -> list[str]:
    return [
        row[0]
        for row in _rows(conn, "outreach_bypass_roles.sql", {"allowed": list(CONSENT_AND_CONTACT_READERS)})
    ]


def forbidden_role_powers(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return [(row[0], row[1]) for row in _rows(conn, "application_role_powers.sql")]


def unregistered_personal_columns(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """Audited columns that look personal but would be chained in clear (not in audit.personal_column)."""
    return [(row[0], row[1]) for row in _rows(conn, "unregistered_personal_columns.sql")]
