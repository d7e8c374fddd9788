"""The schema is reached by migrations alone, and applying them again changes nothing."""

from __future__ import annotations

import psycopg

from cdp.warehouse import migrations

SCHEMAS = {"raw", "core", "mart", "ops", "audit"}
CORE_TABLES = {
    "person",
    "person_source_id",
    "organization",
    "organization_membership",
    "household",
    "course",
    "enrollment",
    "course_completion",
    "certificate",
    "donation",
    "donation_soft_credit",
    "consent",
    "survey_response",
    "referral",
    "reward",
    "balance_transaction",
    "refund",
    "ledger_posting",
}
OPS_TABLES = {"sync_watermark", "sync_run", "quarantine", "health_check"}


def _schema_snapshot(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        columns = conn.execute(
            "SELECT table_schema, table_name, column_name, data_type, is_nullable FROM information_schema.columns"
            " WHERE table_schema IN ('raw','core','mart','ops','audit') ORDER BY 1, 2, 3"
        ).fetchall()
        triggers = conn.execute(
            "SELECT event_object_schema, event_object_table, trigger_name, event_manipulation"
            " FROM information_schema.triggers ORDER BY 1, 2, 3, 4"
        ).fetchall()
    return columns + triggers


def test_fresh_database_reaches_the_latest_version(empty_database_url: str) -> None:
    assert migrations.current_revision(empty_database_url) is None

    migrations.upgrade(empty_database_url)

    assert migrations.current_revision(empty_database_url) == migrations.head_revision(empty_database_url)
    with psycopg.connect(empty_database_url) as conn:
        schemas = {row[0] for row in conn.execute("SELECT nspname FROM pg_namespace")}
        tables = set(conn.execute("SELECT schemaname, tablename FROM pg_tables").fetchall())
    assert schemas >= SCHEMAS
    assert {("core", name) for name in CORE_TABLES} <= tables
    assert {("ops", name) for name in OPS_TABLES} <= tables
    assert ("raw", "records") in tables
    assert ("audit", "audit_events") in tables


def test_running_migrations_again_changes_nothing(empty_database_url: str) -> None:
    migrations.upgrade(empty_database_url)
    before = _schema_snapshot(empty_database_url)

    migrations.upgrade(empty_database_url)

    assert _schema_snapshot(empty_database_url) == before
    with psycopg.connect(empty_database_url) as conn:
        assert conn.execute("SELECT count(*) FROM public.alembic_version").fetchone()[0] == 1


def test_every_core_table_is_audited_by_triggers(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        audited = {
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT event_object_table FROM information_schema.triggers"
                " WHERE event_object_schema = 'core' AND trigger_name = 'audit_update'"
            )
        }
        every_table = {
            row[0]
            for row in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'core' AND c.relkind IN ('r', 'p')"
            )
        }
    assert every_table >= CORE_TABLES
    assert audited == every_table  # a table added to core without change tracking fails here


def test_money_is_integer_minor_units_with_a_currency(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = 'core' AND table_name = 'donation'"
            ).fetchall()
        )
    assert types["amount_minor"] == "bigint"
    assert types["currency"] == "character"
    assert types["financial_transaction_id"] == "text"
