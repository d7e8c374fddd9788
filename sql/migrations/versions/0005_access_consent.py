"""Role privileges, row-level security for partners, consent rules and the outreach_eligible view."""

from cdp.warehouse.migrations import run_sql_file

revision = "0005_access_consent"
down_revision = "0004_quality_finance"


def upgrade() -> None:
    run_sql_file("0005_access_consent.sql")
