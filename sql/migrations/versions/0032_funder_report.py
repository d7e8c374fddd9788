"""The funder report: a "skills improvement" survey measure, and the cdp_funder_report DAG's own role."""

from cdp.warehouse.migrations import run_sql_file

revision = "0032_funder_report"
down_revision = "0031_funds_programs"


def upgrade() -> None:
    run_sql_file("0032_funder_report.sql")
