"""Phase 2 links learners to the Salesforce Contacts staff already created, and queues CRM duplicates."""

from cdp.warehouse.migrations import run_sql_file

revision = "0014_crm_linking"
down_revision = "0012_privacy_erasure"


def upgrade() -> None:
    run_sql_file("0014_crm_linking.sql")
