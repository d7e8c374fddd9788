"""Records deleted at the source: soft deletes on the referral, volunteer-hours, support-ticket and survey tables."""

from cdp.warehouse.migrations import run_sql_file

revision = "0024_activity_deletions"
# After 0023 (Moodle users deleted at the source; issue 17).
down_revision = "0023_source_deletions"


def upgrade() -> None:
    run_sql_file("0024_activity_deletions.sql")
