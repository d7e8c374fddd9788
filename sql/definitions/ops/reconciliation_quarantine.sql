-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- First defined here (issue 15: the reconciliation's own role reads no payload).

-- What the monthly reconciliation needs of the quarantine, and nothing else: the money of Stripe balance
-- transactions waiting there (amount, currency, when, which charge) and the financial transaction id a
-- quarantined CRM Opportunity names. A masked copy for cdp_reconcile, which may not read payloads (they can
-- hold whole personal records): it runs with its owner's rights on purpose and shows no personal field.
CREATE OR REPLACE VIEW ops.reconciliation_quarantine AS
SELECT q.quarantine_id, q.source, q.stream, q.source_record_id, q.reason, q.resolved_at,
       CASE WHEN q.stream = 'balance_transactions' THEN q.payload ->> 'amount' END AS amount,
       CASE WHEN q.stream = 'balance_transactions' THEN q.payload ->> 'currency' END AS currency,
       CASE WHEN q.stream = 'balance_transactions' THEN q.payload ->> 'created' END AS created,
       CASE WHEN q.stream = 'balance_transactions' THEN q.payload ->> 'source' END AS stripe_charge,
       CASE WHEN q.stream = 'Opportunity' THEN q.payload ->> 'Financial_Transaction_Id__c' END
           AS financial_transaction_id
FROM ops.quarantine q
WHERE (q.source = 'stripe' AND q.stream = 'balance_transactions')
   OR (q.source = 'salesforce' AND q.stream = 'Opportunity');

COMMENT ON VIEW ops.reconciliation_quarantine IS
    'The quarantined money the reconciliation names (Stripe balance transactions, CRM Opportunities): no payload.';
REVOKE ALL ON ops.reconciliation_quarantine FROM PUBLIC;
GRANT SELECT ON ops.reconciliation_quarantine TO cdp_reconcile, cdp_loader, cdp_admin, cdp_finance;
