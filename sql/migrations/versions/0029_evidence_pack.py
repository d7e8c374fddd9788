"""The auditor's evidence pack: privilege snapshots (access changes) and its own read-only role, cdp_evidence."""

from cdp.warehouse.migrations import run_sql_file

revision = "0029_evidence_pack"
# After 0028 (erasure reaches the dedupe's records).
down_revision = "0028_erase_merge_images"


def upgrade() -> None:
    run_sql_file("0029_evidence_pack.sql")
