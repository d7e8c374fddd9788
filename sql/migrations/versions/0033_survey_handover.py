"""The survey hand-over ledger: which invitation went to which tool, with the tool's id for it (issue 18, part 2)."""

from cdp.warehouse.migrations import run_sql_file

revision = "0033_survey_handover"
# After 0032, written on another branch (the funder report): the lead sets its full revision id at merge (tested on
# this branch with down_revision "0031_funds_programs").
down_revision = "0032_funder_report"


def upgrade() -> None:
    run_sql_file("0033_survey_handover.sql")
