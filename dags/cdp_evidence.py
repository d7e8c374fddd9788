"""
# The auditor's monthly evidence pack (`cdp_evidence`)

**What it does.** After each monthly reconciliation (`cdp_reconcile`'s Asset `finance.reconciliation`, whose
event names the month), it writes that month's evidence pack: one folder, `.cdp/evidence/evidence-YYYY-MM/`,
with who could do what (every login and application role on every financial, personal and audit table and
definer function, from the catalog), every change to donations in the month with who requested and who
approved it, the audit chain's verification with the anchored head, the reconciliation sign-off, and the
access changes (the month's privilege snapshot against the previous month's). `README.md` in the folder lists
every file with its sha256 (`SHA256SUMS` too); the same data gives the same bytes.

**Reads** the catalog, `ops.donation_correction`, `ops.reconciliation_*`, `audit.audit_events` and the anchor
file; **writes** the folder, `ops.privilege_snapshot` (a new row only when the privileges changed) and one
audit event per new snapshot. **Connects as** its own login through the connection `warehouse_evidence`: a
member of `cdp_evidence` (revision 0029), which reads no core table and changes nothing but its snapshots.

**An alert from it means** the audit chain failed verification (`AuditChainBroken`: the pack is written and
says where the chain breaks; follow its runbook entry), or the warehouse was unreachable. A month without a
reconciliation run is not an alert here: the pack says so in its README and `reconciliation/sign_off.json`.

**Re-run / backfill.** Trigger with param `month` = `YYYY-MM` (default: the month the triggering
reconciliation names, else the month before the run); the folder is replaced whole. A closed month whose
later months already have snapshots keeps its own stored privileges. `cdp audit evidence --month YYYY-MM`
does the same by hand.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from cdp.runtime import default_args, month_param, month_to_write, reconciliation_asset, run_failure_notifier


@dag(
    # On every cdp_reconcile run (monthly, 07:00 UTC on the 2nd, or a month reconciled on demand).
    schedule=reconciliation_asset(),
    start_date=None,
    catchup=False,
    max_active_runs=1,
    tags=["finance"],
    default_args=default_args(retries=2),
    on_failure_callback=run_failure_notifier(),
    params={
        "month": month_param("the pack"),
    },
    doc_md=__doc__,
)
def cdp_evidence() -> None:
    @task
    def write_pack(
        params: dict | None = None, ti=None, logical_date=None, triggering_asset_events=None
    ) -> dict[str, object]:
        """The month's folder; the chain's verification result is handed on."""
        from cdp.evidence.pack import write_pack as write
        from cdp.paths import state_dir
        from cdp.runtime import actor_of, warehouse_url

        month = month_to_write(params, triggering_asset_events, logical_date)
        pack = write(warehouse_url(ti.dag_id), month, state_dir() / "evidence", actor=actor_of(ti))
        return {"month": month, "folder": str(pack.folder), "chain_ok": pack.chain_ok,
                "chain": pack.chain_summary, "reconciliation": pack.reconciliation, "files": pack.files}  # fmt: skip

    @task
    def require_verified_chain(pack: dict[str, object]) -> None:
        """Fails the run (one alert) when the audit chain failed verification; the pack is written either way."""
        from cdp.health import AuditChainBroken

        if not pack["chain_ok"]:
            raise AuditChainBroken(f"evidence pack {pack['month']}: {pack['chain']} (pack: {pack['folder']})")

    require_verified_chain(write_pack())


cdp_evidence()
