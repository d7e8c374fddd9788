"""Funds as the CRM keeps them (NPSP General Accounting Units and Allocations) and programs tied to funds."""

from cdp.warehouse.migrations import run_sql_file

revision = "0031_funds_programs"
# After 0030 (0029 evidence pack, 0030 survey invitations: other helpers' branches). Tested on this branch
# with down_revision "0028_erase_merge_images"; set to 0030's id (as its branch names it) for the merge.
down_revision = "0030_survey_invitations"


def upgrade() -> None:
    run_sql_file("0031_funds_programs.sql")
