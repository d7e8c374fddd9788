"""The nightly identity resolution's own role, cdp_dedupe (issue 15: each DAG family its own login)."""

from cdp.warehouse.migrations import run_sql_file

revision = "0027_dedupe_role"
# After 0026 (the reconciliation's own role).
down_revision = "0026_reconcile_role"


def upgrade() -> None:
    run_sql_file("0027_dedupe_role.sql")
