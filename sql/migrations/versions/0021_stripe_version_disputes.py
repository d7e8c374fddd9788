"""Stripe as it is (issue 16): the API version each sync run asked for; disputes in the reconciliation."""

from cdp.warehouse.migrations import run_sql_file

revision = "0021_stripe_version_disputes"
down_revision = "0020_value_free_reasons"


def upgrade() -> None:
    run_sql_file("0021_stripe_version_disputes.sql")
