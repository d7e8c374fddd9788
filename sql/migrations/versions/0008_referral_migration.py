"""Referral program migration: legacy spreadsheet rows, the pilot, the parallel-run discrepancies, reward
fulfilment with its manual fallback queue, and the referral KPI marts."""

from cdp.warehouse.migrations import run_sql_file

revision = "0008_referral_migration"
down_revision = "0007_crm_push_triggers"


def upgrade() -> None:
    run_sql_file("0008_referral_migration.sql")
