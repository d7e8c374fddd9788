"""Stripe disputes in core (issue 16): core.dispute, keyed by Stripe's dispute id, read by the reconciliation."""

from cdp.warehouse.migrations import run_sql_file

revision = "0034_stripe_disputes"
# After 0033 (0032/0033: other helpers' branches). Tested on this branch with down_revision
# "0031_funds_programs"; set to 0033's id (as its branch names it) for the merge.
down_revision = "0033_survey_handover"


def upgrade() -> None:
    run_sql_file("0034_stripe_disputes.sql")
