"""Erasure vs the hash-chained audit: personal fields of change images kept outside the chain, erasable."""

from cdp.warehouse.migrations import run_sql_file

revision = "0012_privacy_erasure"
down_revision = "0010_finance_alerts"


def upgrade() -> None:
    run_sql_file("0012_privacy_erasure.sql")
