"""Webhook intake limits: rejections counted per source, reason and hour; undeliverable signed deliveries kept."""

from cdp.warehouse.migrations import run_sql_file

revision = "0016_webhook_intake_limits"
down_revision = "0015_support_tickets"


def upgrade() -> None:
    run_sql_file("0016_webhook_intake_limits.sql")
