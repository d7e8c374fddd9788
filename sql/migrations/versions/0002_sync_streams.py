"""Tables for the remaining streams: Stripe refunds and balance transactions, ledger, survey consent."""

from cdp.warehouse.migrations import run_sql_file

revision = "0002_sync_streams"
down_revision = "0001_foundation"


def upgrade() -> None:
    run_sql_file("0002_sync_streams.sql")
