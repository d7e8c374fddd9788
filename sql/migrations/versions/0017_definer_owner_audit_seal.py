"""Definer functions owned by a non-superuser role; audit events written by the warehouse only, sealed at commit."""

from cdp.warehouse.migrations import run_sql_file

revision = "0017_definer_owner_audit_seal"
down_revision = "0016_webhook_intake_limits"


def upgrade() -> None:
    run_sql_file("0017_definer_owner_audit_seal.sql")
