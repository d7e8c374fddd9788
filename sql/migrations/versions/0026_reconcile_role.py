"""The monthly reconciliation's own least-privileged role, cdp_reconcile."""

from cdp.warehouse.migrations import run_sql_file

revision = "0026_reconcile_role"
# After 0025 (the reconciliation's not_in_crm class).
down_revision = "0025_not_in_crm"


def upgrade() -> None:
    run_sql_file("0026_reconcile_role.sql")
