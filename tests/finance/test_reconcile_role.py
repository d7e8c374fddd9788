"""The reconciliation's own role (issue 15, "each DAG family its own role"): a login of cdp_reconcile runs a
whole month (the reconciliation, its report, its alert, the audit anchor) and can do nothing else: it reads no
personal data and no payload, writes no source table and no audit row of its own."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from psycopg.types.json import Jsonb

from cdp import audit
from cdp.finance.reconcile import reconcile_month, reconciliation_alert
from cdp.warehouse import Actor, connect

ACTOR = Actor("airflow:cdp_reconcile", dag_id="cdp_reconcile", run_id="manual__1", task_id="reconcile")


def test_a_reconcile_login_runs_a_month_and_nothing_else(warehouse_url: str, books, logins, tmp_path) -> None:
    books.gift("FT-OK", 4000, fee=146)
    books.donation("FT-WONLY", 1500)  # never reached the ledger
    books.stripe("FT-WONLY", 1500)
    books.conn.execute(
        "UPDATE core.donation SET crm_source_record_id = '006A', crm_amount_minor = 3900, crm_currency = 'USD',"
        " crm_stage = 'Closed Won' WHERE financial_transaction_id = 'FT-OK'"  # a CRM typo of one dollar
    )
    books.conn.execute(
        "INSERT INTO ops.sync_run (run_id, source, stream, window_end, started_at)"
        " VALUES ('sync', 'salesforce', 'Opportunity', '2024-04-02', now())"
    )
    books.conn.execute(  # Stripe money whose charge the warehouse never got, its payload naming a person
        "INSERT INTO ops.quarantine (source, stream, source_record_id, run_id, reason, payload)"
        " VALUES ('stripe', 'balance_transactions', 'txn_lost', 'sync',"
        " 'unknown charge: the stripe charge in source is not in the warehouse yet', %s)",
        (Jsonb({"id": "txn_lost", "amount": 2500, "currency": "usd", "source": "ch_lost",
                "created": int(datetime(2024, 3, 9, tzinfo=UTC).timestamp()),
                "description": "Gift from Ada Lovelace <ada@example.org>"}),),
    )  # fmt: skip
    url = logins("cdp_reconcile")
    sent: list[str] = []

    result = reconcile_month(url, "2024-03", actor=ACTOR, airflow_run_id="manual__1", report_dir=tmp_path)
    assert reconciliation_alert(url, result.as_dict(), run_id="manual__1", send=sent.append, actor=ACTOR)
    with connect(url, ACTOR, autocommit=True) as conn:
        anchor = audit.export_head(conn, path=tmp_path / "anchors", run_id="manual__1")

    assert result.total("in_warehouse_not_ledger") == (1, 1500)
    assert result.total("crm_amount_mismatch") == (1, 100)
    assert result.total("not_in_crm") == (1, 1500)
    assert result.total("stripe_quarantined") == (1, -2500)
    assert "Ada" not in result.report_csv.read_text() and "ada@" not in result.report_html.read_text()
    assert len(sent) == 1 and "2024-03" in sent[0]
    with psycopg.connect(warehouse_url) as conn:
        actor, login, details = conn.execute(
            "SELECT actor, session_role, details FROM audit.audit_events WHERE action = 'reconciliation'"
        ).fetchone()
    assert (login.startswith("t_reconcile_"), actor, details["unexplained"]) == (True, ACTOR.name, 3)
    assert anchor is not None and anchor.seq >= 1

    refused = {
        "a person's email": "SELECT email FROM core.person",
        "consent": "SELECT * FROM core.consent",
        "a quarantined payload": "SELECT payload FROM ops.quarantine",
        "raw records": "SELECT payload FROM raw.records",
        "an audit image": "SELECT before FROM audit.audit_events",
        "a donation's donor": "UPDATE core.donation SET person_id = NULL",
        "a donation's amount": "UPDATE core.donation SET amount_minor = 1",
        "the ledger": "DELETE FROM core.ledger_posting",
        "an audit row of its own": "INSERT INTO audit.audit_events (action, entity_type) VALUES ('merge', 'x')",
        "an explanation": "INSERT INTO ops.reconciliation_explanation VALUES ('FT-WONLY', 'not_in_crm', 'ok')",
        "a finished run rewritten": "DELETE FROM ops.reconciliation_result",
    }
    for what, statement in refused.items():
        with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)
            pytest.fail(f"a reconcile login reached {what}")
