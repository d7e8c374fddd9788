-- 0026 The monthly reconciliation's own role (issue 15; DESIGN "Least privilege": each DAG family its own role).
--
-- cdp_reconcile is what the cdp_reconcile DAG's login (AIRFLOW_CONN_WAREHOUSE_RECONCILE) is a member of. It
-- reads the money columns of the three sides (donations, Stripe's balance transactions and refunds, the
-- ledger) and the CRM's amounts beside each donation, the explanations finance recorded, and when the CRM
-- was last read; it writes the reconciliation's own tables and its alert state. It reads no personal data
-- (no core.person, no consent, no payload: the quarantined money it names comes through the masked view
-- ops.reconciliation_quarantine), writes no source table and no audit row but through audit.record_event.
-- Its function grants: audit.record_event at the end (and in sql/definitions), audit.seal in sql/definitions.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cdp_reconcile') THEN
        CREATE ROLE cdp_reconcile NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA core, ops, audit TO cdp_reconcile;

-- sql/finance/reconcile.sql: the three sides and the CRM's amounts, by financial transaction id.
GRANT SELECT (donation_id, financial_transaction_id, person_id, campaign, amount_minor, fee_minor, refunded_minor,
              currency, received_at, status, crm_source_record_id, crm_amount_minor, crm_currency, crm_stage)
    ON core.donation TO cdp_reconcile;
GRANT SELECT (financial_transaction_id, type, reporting_category, amount_minor, fee_minor, currency, created_at)
    ON core.balance_transaction TO cdp_reconcile;
GRANT SELECT (financial_transaction_id, amount_minor, currency, created_at, status) ON core.refund TO cdp_reconcile;
GRANT SELECT (financial_transaction_id, posting_date, account, amount_minor, currency)
    ON core.ledger_posting TO cdp_reconcile;
GRANT SELECT ON ops.finance_ledger_account, ops.reconciliation_explanation TO cdp_reconcile;
-- Was the CRM read past the month (reconcile.sql), has a complete sync landed yet (a scheduled run's first check).
GRANT SELECT (run_id, source, stream, window_end) ON ops.sync_run TO cdp_reconcile;

-- Its own results: a run, its totals and differing rows, and the report's history of earlier months.
GRANT SELECT, INSERT ON ops.reconciliation_run, ops.reconciliation_total, ops.reconciliation_result
    TO cdp_reconcile;
GRANT UPDATE (finished_at, gifts, unexplained_count, status, report_html, report_csv)
    ON ops.reconciliation_run TO cdp_reconcile;

-- cdp.quality.data_alerts.alert_once: one grouped alert per month, repeated only when it changes.
GRANT SELECT, INSERT ON ops.alert_state TO cdp_reconcile;
GRANT UPDATE (fingerprint, active, summary, last_seen, last_sent_at, last_run_id, times_seen)
    ON ops.alert_state TO cdp_reconcile;

-- cdp.audit.head (the anchor after the run): the chain's head, nothing of the events themselves.
GRANT SELECT (seq, hash) ON audit.audit_events TO cdp_reconcile;

-- The report traces each differing gift to its donor's learning (no personal field), and the run records one
-- audit event and seals the chain; sql/definitions re-applies the same grants (ops/donation_trace.sql,
-- audit/audit_events.sql).
GRANT SELECT ON ops.donation_trace TO cdp_reconcile;
GRANT EXECUTE ON FUNCTION audit.record_event(text, text, text, jsonb, jsonb, jsonb) TO cdp_reconcile;
