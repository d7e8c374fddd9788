"""Legacy-export audit (phase 1 of the migration) and the volunteer platform with the KPI marts (phase 4)."""

from cdp.warehouse.migrations import run_sql_file

revision = "0006_legacy_audit_platforms"
down_revision = "0005_access_consent"


def upgrade() -> None:
    run_sql_file("0006_legacy_audit_platforms.sql")
