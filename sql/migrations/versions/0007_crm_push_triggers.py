"""Push state for the warehouse-to-CRM contact push, its conflicts and errors, and the completion trigger ledger."""

from cdp.warehouse.migrations import run_sql_file

revision = "0007_crm_push_triggers"
down_revision = "0006_legacy_audit_platforms"


def upgrade() -> None:
    run_sql_file("0007_crm_push_triggers.sql")
