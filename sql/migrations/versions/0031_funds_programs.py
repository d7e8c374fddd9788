"""Funds as the CRM keeps them (NPSP General Accounting Units and Allocations) and programs tied to funds."""

from cdp.warehouse.migrations import run_sql_file

revision = "0031_funds_programs"
# After 0030 (issue 19's other parts; the lead fixes the chain at merge).
down_revision = "0028_erase_merge_images"


def upgrade() -> None:
    run_sql_file("0031_funds_programs.sql")
