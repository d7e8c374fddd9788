"""The survey invitation ledger: who was asked, by which survey and tool, in which week (issue 18)."""

from cdp.warehouse.migrations import run_sql_file

revision = "0030_survey_invitations"
# After 0029, written on another branch: the lead sets its full revision id here at merge (tested on this
# branch with "0028_erase_merge_images").
down_revision = "0029_evidence_pack"


def upgrade() -> None:
    run_sql_file("0030_survey_invitations.sql")
