"""The audit head anchored after every task, so no run leaves its audit events unanchored until the hourly
health check (issue 15, item 10).

A task callback (success and final failure: a failed task may have committed events before it failed) reads
the head and appends it to the anchor file when it moved past the file's last anchor, so a task that writes
no audit event adds nothing. It runs in the worker, as the pipeline's OS user: the only one that can write
the file (``cdp.audit.export_head`` creates it 0600 and refuses a symlink or someone else's file).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)


def anchor_audit_head(context: Mapping[str, Any]) -> None:
    """Task callback: append the audit head to the anchor file when the task's run moved it."""
    from cdp import audit
    from cdp.runtime.context import actor_of, warehouse_url
    from cdp.warehouse import connect

    ti = context.get("ti") or context.get("task_instance")
    with connect(warehouse_url(getattr(ti, "dag_id", None)), actor_of(ti), autocommit=True) as conn:
        anchor = audit.export_head(conn, run_id=getattr(ti, "run_id", None), only_if_moved=True)
    if anchor is not None:
        log.info("audit head anchored: seq %s", anchor.seq)
