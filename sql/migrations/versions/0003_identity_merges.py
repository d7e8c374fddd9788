"""Identity in the warehouse: reversible merges, the review queue, decisions, dedupe run reports."""

from cdp.warehouse.migrations import run_sql_file

revision = "0003_identity_merges"
down_revision = "0002_sync_streams"


def upgrade() -> None:
    run_sql_file("0003_identity_merges.sql")
