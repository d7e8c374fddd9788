"""Records deleted at the source: a deleted source identity is kept and stamped, a deletion of a record that
never reached core is kept too (issue 17, item 6; Moodle's deleted users first)."""

from cdp.warehouse.migrations import run_sql_file

revision = "0023_source_deletions"
# Given number 0023 for issue 17's Moodle part; chained to 0019 here, the lead re-chains.
down_revision = "0022_crm_removals"


def upgrade() -> None:
    run_sql_file("0023_source_deletions.sql")
