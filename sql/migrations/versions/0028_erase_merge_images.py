"""Erasure blanks the merge before-images and review notes of the person; viewers no longer read review notes."""

from cdp.warehouse.migrations import run_sql_file

revision = "0028_erase_merge_images"
# After 0027 (the dedupe's own role).
down_revision = "0027_dedupe_role"


def upgrade() -> None:
    run_sql_file("0028_erase_merge_images.sql")
