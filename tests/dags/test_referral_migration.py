"""End to end: `referral_migration` under Airflow imports the sheet, chooses the pilot, reports exactly the
planted discrepancies, queues rewards while ReferralHero is down and drains the queue once it is back; a
re-run changes nothing."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import psycopg
import pytest
from support import snapshot

from cdp_sandbox.devserver import connection_env
from cdp_sandbox.faults import Fault
from cdp_sandbox.legacy_referrals import LegacySheet
from cdp_sandbox.server import SandboxServer

TABLES = ("raw.records", "ops.referral_legacy", "ops.referral_pilot", "ops.referral_discrepancy",
          "ops.reward_fulfilment", "ops.quarantine", "ops.alert_state", "audit.audit_events")  # fmt: skip


@pytest.mark.slow
def test_referral_migration_end_to_end(
    load_dag,
    warehouse_url: str,
    synced_learning: None,
    referral_sandbox: SandboxServer,
    sheet: LegacySheet,
    sheet_csv: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
    monkeypatch.setenv(
        "CDP_IMPORT_FOLDERS", str(sheet_csv.parent)
    )  # legacy_file must lie in an import folder
    monkeypatch.setenv(
        *connection_env(
            "referralhero", referral_sandbox.settings("referralhero", max_attempts=2, retry_base_delay=0.01)
        )
    )
    conf = {"legacy_file": str(sheet_csv), "as_of": "2024-12-31T12:00:00Z", "pilot_share": 0.07}
    dag = load_dag("referral_migration")
    outage = referral_sandbox.faults.add(Fault("server_error", "referralhero", "reward_status", status=503))

    down = dag.test(run_conf=conf, logical_date=None)

    assert down.state == "success"
    with psycopg.connect(warehouse_url) as conn:
        found = dict(conn.execute("SELECT referral_key, kind FROM ops.referral_discrepancy").fetchall())
        pilot, active = conn.execute(
            "SELECT (SELECT count(*) FROM ops.referral_pilot), (SELECT count(DISTINCT person_id)"
            " FROM core.enrollment WHERE enrolled_at >= '2023-12-31')"
        ).fetchone()
        queued = conn.execute("SELECT count(*) FROM ops.reward_fulfilment_queue").fetchone()[0]
    assert found == sheet.discrepancies
    assert 0.05 <= pilot / active <= 0.10
    assert queued > 0 and not referral_sandbox.apis.reward_desk.sent

    referral_sandbox.faults.remove(outage.id)
    back = dag.test(run_conf=conf, logical_date=None)

    assert back.state == "success"
    with psycopg.connect(warehouse_url) as conn:
        ledger = Counter(s for (s,) in conn.execute("SELECT status FROM ops.reward_fulfilment"))
        drained = conn.execute(
            "SELECT count(*) FROM ops.reward_fulfilment WHERE fulfilled_by = 'platform (queue drained)'"
        ).fetchone()[0]
    assert ledger == {"fulfilled": queued} and drained == queued
    assert set(referral_sandbox.apis.reward_desk.sent.values()) == {1}
    before = snapshot(warehouse_url, TABLES)

    again = dag.test(run_conf=conf, logical_date=None)

    assert again.state == "success"
    assert snapshot(warehouse_url, TABLES) == before
    assert set(referral_sandbox.apis.reward_desk.sent.values()) == {1}
    reports = sorted(
        (Path(__import__("os").environ["CDP_HOME"]) / "reports" / "referral_parallel_run").glob("*.csv")
    )
    assert reports and all(
        len(p.read_text().splitlines()) == len(sheet.discrepancies) + 1 for p in reports[-3:]
    )
