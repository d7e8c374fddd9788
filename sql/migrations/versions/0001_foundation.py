"""Schemas, roles, the hash-chained audit trail, raw landing, the core model and ops tables."""

from cdp.warehouse.migrations import run_sql_file

revision = "0001_foundation"
down_revision = None


def upgrade() -> None:
    run_sql_file("0001_foundation.sql")
