"""Value-free quarantine reasons: the value a check refused in its own column, granted like the payload."""

from cdp.warehouse.migrations import run_sql_file

revision = "0020_value_free_reasons"
down_revision = "0019_process_roles"


def upgrade() -> None:
    run_sql_file("0020_value_free_reasons.sql")
