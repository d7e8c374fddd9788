"""Records deleted at the source: soft deletes on the referral, volunteer-hours, support-ticket and survey tables."""

from cdp.warehouse.migrations import run_sql_file

revision = "0024_source_deletions"
# Written alongside 0020-0023 (issues 16/17); the lead re-chains.
down_revision = "0019_process_roles"


def upgrade() -> None:
    run_sql_file("0024_source_deletions.sql")
