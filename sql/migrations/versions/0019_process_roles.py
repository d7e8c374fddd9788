"""Process roles: the webhook intake's own role (insert into the intake tables only)."""

from cdp.warehouse.migrations import run_sql_file

revision = "0019_process_roles"
# Chained to 0016 while 0017 (secaudit) and 0018 (secdata) are written alongside; the lead re-chains.
down_revision = "0018_personal_data_paths"


def upgrade() -> None:
    run_sql_file("0019_process_roles.sql")
