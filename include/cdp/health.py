"""The warehouse health check: is the server reachable, is the schema current, is the audit chain intact.

Each check writes one ``ops.health_check`` row and one audit event, and exports the audit head to the
anchor file, so the next ``cdp audit verify`` can tell if rows were cut from the end since.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from cdp import audit
from cdp.warehouse import Actor, migrations, transaction

log = logging.getLogger(__name__)


class SchemaOutOfDate(RuntimeError):
    """The warehouse schema is behind the code: run `cdp migrate`."""


class AuditChainBroken(RuntimeError):
    """`cdp audit verify` found an edited, deleted or cut audit row."""


@dataclass(frozen=True)
class HealthResult:
    check_id: int
    server_version: str
    schema_version: str
    audit: audit.VerifyReport


def check_warehouse(url: str, actor: Actor, run_id: str) -> HealthResult:
    """Run every check, record it, and raise if the schema is behind or the audit chain is broken."""
    current, expected = migrations.current_revision(url), migrations.head_revision(url)
    if current != expected:
        raise SchemaOutOfDate(
            f"warehouse schema is at {current or 'nothing'}, code expects {expected}: run `cdp migrate`"
        )
    with transaction(url, actor) as conn:
        report = audit.verify(conn, audit.read_anchors(audit.default_anchor_file()))
        version = conn.execute("SELECT current_setting('server_version') AS v").fetchone()["v"]
        row = conn.execute(
            "INSERT INTO ops.health_check"
            " (run_id, server_version, schema_version, audit_head_seq, audit_chain_ok, details)"
            " VALUES (%s, %s, %s, %s, %s, %s::jsonb) RETURNING check_id",
            (
                run_id,
                version,
                current,
                report.head.seq if report.head else None,
                report.ok,
                json.dumps({"audit_rows_checked": report.rows_checked, "problem": report.problem}),
            ),
        ).fetchone()
        audit.record_event(
            conn,
            "health_check",
            "ops.health_check",
            str(row["check_id"]),
            {
                "schema_version": current,
                "audit_chain_ok": report.ok,
                "audit_rows_checked": report.rows_checked,
            },
        )
    log.info("health check %s: schema %s, %s", row["check_id"], current, report.summary())
    if not report.ok:
        raise AuditChainBroken(report.summary())
    with transaction(url, actor) as conn:
        audit.export_head(conn, run_id=run_id)
    return HealthResult(int(row["check_id"]), version, str(current), report)
