"""Gifts that never reached the CRM: reconciliation class 'not_in_crm'."""

from cdp.warehouse.migrations import run_sql_file

revision = "0025_not_in_crm"
# After 0024 (soft deletes on activity tables; issue 17).
down_revision = "0024_activity_deletions"


def upgrade() -> None:
    run_sql_file("0025_not_in_crm.sql")
