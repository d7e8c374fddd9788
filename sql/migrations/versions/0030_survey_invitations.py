"""The survey invitation ledger: who was asked, by which survey and tool, in which week (issue 18)."""

from cdp.warehouse.migrations import run_sql_file

revision = "0030_survey_invitations"
# After 0029 (written on another branch; the lead links the chain at merge).
down_revision = "0028_erase_merge_images"  # TEMP


def upgrade() -> None:
    run_sql_file("0030_survey_invitations.sql")
