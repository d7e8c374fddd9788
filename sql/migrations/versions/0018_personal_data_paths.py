"""Personal data paths: images, payloads and bodies only for who reads the same columns in core; partners
register members only through privacy.register_member."""

from cdp.warehouse.migrations import run_sql_file

revision = "0018_personal_data_paths"
# 0017 (definer-function owners, audit inserts) is written at the same time; the lead re-chains at merge.
down_revision = "0017_definer_owner_audit_seal"


def upgrade() -> None:
    run_sql_file("0018_personal_data_paths.sql")
