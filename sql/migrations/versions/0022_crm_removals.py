"""CRM deletions and merges: Salesforce Contacts deleted or merged at the source, kept as audited soft deletes."""

from cdp.warehouse.migrations import run_sql_file

revision = "0022_crm_removals"
down_revision = "0021_stripe_version_disputes"


def upgrade() -> None:
    run_sql_file("0022_crm_removals.sql")
