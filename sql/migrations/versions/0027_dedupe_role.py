"""The nightly identity resolution's own role, cdp_dedupe (issue 15: each DAG family its own login)."""

from cdp.warehouse.migrations import run_sql_file

revision = "0027_dedupe_role"
# TODO(lead): chained to 0025 while 0026 (the reconcile role) is written alongside: must become
# "0026_reconcile_role" at merge.
down_revision = "0025_not_in_crm"


def upgrade() -> None:
    run_sql_file("0027_dedupe_role.sql")
