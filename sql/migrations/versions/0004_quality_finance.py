"""Count diffs, financial reconciliation, donation corrections and data-alert history."""

from cdp.warehouse.migrations import run_sql_file

revision = "0004_quality_finance"
down_revision = "0003_identity_merges"


def upgrade() -> None:
    run_sql_file("0004_quality_finance.sql")
