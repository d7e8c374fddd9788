"""Seeding helpers for the privacy and webhook tests: people and consent statements."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg


def add_person(
    conn: psycopg.Connection,
    *,
    born: date | None,
    jurisdiction: str | None = "US",
    email: str | None = None,
    given_name: str = "Sam",
) -> str:
    person_id = str(uuid.uuid4())
    email = email or f"{person_id[:8]}@example.org"
    conn.execute(
        "INSERT INTO core.person (person_id, given_name, family_name, date_of_birth, email, email_normalized,"
        " country, jurisdiction, is_learner) VALUES (%s, %s, 'Doe', %s, %s, lower(%s), %s, %s, true)",
        (person_id, given_name, born, email, email, jurisdiction, jurisdiction),
    )
    return person_id


def add_consent(
    conn: psycopg.Connection,
    person_id: str,
    status: str,
    *,
    purpose: str = "course_messages",
    stated_at: datetime | None = None,
    source: str = "moodle",
    given_by: str | None = None,
) -> None:
    conn.execute(
        "INSERT INTO core.consent (person_id, purpose, status, lawful_basis, source, source_record_id, stated_at,"
        " given_by, parental_method) VALUES (%s, %s, %s, 'consent', %s, %s, %s, %s, %s)",
        (
            person_id, purpose, status, source, str(uuid.uuid4()), stated_at or datetime.now(UTC), given_by,
            "signed form" if status == "parental_consent_verified" else None,
        ),
    )  # fmt: skip


def years_ago(years: int, days: int = 10) -> date:
    today = date.today()
    try:
        born = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        born = today.replace(year=today.year - years, day=28)
    return date.fromordinal(born.toordinal() - days)


def eligible(conn: psycopg.Connection, purpose: str = "course_messages") -> set[str]:
    rows = conn.execute(
        "SELECT person_id FROM mart.outreach_eligible WHERE purpose = %s", (purpose,)
    ).fetchall()
    return {str(row[0]) for row in rows}


def url_for(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{quote(user)}:{quote(password)}@{host}"))


OWN_SCHEMAS = ("raw", "core", "mart", "ops", "audit", "privacy")
_READABLE_COLUMNS = """
    SELECT c.relnamespace::regnamespace::text, c.relname::text, array_agg(a.attname::text ORDER BY a.attnum)
    FROM pg_class c
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE c.relkind IN ('r', 'v', 'm', 'p') AND c.relnamespace::regnamespace::text = ANY (%s)
      AND has_column_privilege(c.oid, a.attnum, 'SELECT')
    GROUP BY c.oid ORDER BY 1, 2"""


def readable_text(conn: psycopg.Connection) -> dict[str, str]:
    """Everything the connection's role can read in the warehouse's schemas: relation -> its rows as text
    (only the columns it holds SELECT on, as its row-level security shows them)."""
    from psycopg import sql

    texts = {}
    for schema, name, columns in conn.execute(_READABLE_COLUMNS, (list(OWN_SCHEMAS),)).fetchall():
        query = sql.SQL("SELECT coalesce(string_agg(row({})::text, ' '), '') FROM {}").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(schema, name)
        )
        texts[f"{schema}.{name}"] = conn.execute(query).fetchone()[0]
    return texts
