"""Support tickets (Zendesk) in core, joined to people and referrals; the referral support-ticket KPI."""

from cdp.warehouse.migrations import run_sql_file

revision = "0015_support_tickets"
down_revision = "0014_crm_linking"


def upgrade() -> None:
    run_sql_file("0015_support_tickets.sql")
