"""The CRM's Opportunity amounts as a side of the reconciliation; quarantined Stripe money as a class."""

from cdp.warehouse.migrations import run_sql_file

revision = "0010_finance_alerts"
down_revision = "0008_referral_migration"


def upgrade() -> None:
    run_sql_file("0010_finance_alerts.sql")
