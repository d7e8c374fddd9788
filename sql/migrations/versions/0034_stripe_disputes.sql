-- 0034 Stripe disputes in core (issue 16: "disputes and their balance transactions reach reconciliation").
--
-- A dispute (https://docs.stripe.com/api/disputes/object) arrives in the Stripe balance transactions stream,
-- listed by /v1/disputes and carried by charge.dispute.* events (cdp.sources.stripe); its SQL
-- (include/cdp/sources/stripe/sql/balance_transactions.sql) lands the dispute here, its latest state, and the
-- money it withdrew and reinstated in core.balance_transaction (source_object_id = the dispute's id). A column
-- is NOT NULL only where Stripe's OpenAPI schema promises the field (spec3.json, component "dispute":
-- amount, balance_transactions, charge, created, currency, reason, status are required and non-nullable;
-- payment_intent is nullable). No personal data: the donor is reached through the gift.
CREATE TABLE core.dispute (
    dispute_id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    source                   text NOT NULL,
    source_record_id         text NOT NULL,             -- Stripe's dispute id (dp_…, du_…)
    charge_id                text NOT NULL,             -- the disputed charge (ch_…, py_…)
    payment_intent_id        text,                      -- its PaymentIntent, where Stripe names one
    donation_id              uuid REFERENCES core.donation,
    financial_transaction_id text,                      -- the disputed gift's id, traced through the charge
    amount_minor             bigint NOT NULL CHECK (amount_minor >= 0),  -- the disputed amount
    currency                 char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status                   text NOT NULL,             -- needs_response, under_review, won, lost, …
    reason                   text NOT NULL,             -- fraudulent, duplicate, general, …
    -- The balance transactions of the money withdrawn (reporting category dispute) and reinstated
    -- (dispute_reversal), as the dispute lists them; each lands in core.balance_transaction by this id.
    balance_transaction_ids  text[] NOT NULL DEFAULT '{}',
    created_at               timestamptz NOT NULL,      -- opened
    updated_at               timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_record_id)
);
CREATE INDEX dispute_ftid ON core.dispute (financial_transaction_id);
CREATE INDEX dispute_donation ON core.dispute (donation_id);
COMMENT ON TABLE core.dispute IS
    'Stripe disputes (0034), latest state, keyed by Stripe''s dispute id; their money is in core.balance_transaction.';

SELECT audit.track_changes('core.dispute'::regclass, 'dispute_id');

-- Least privilege: the pipeline upserts (never deletes: a closed dispute stays, with its status); staff and
-- finance read; the reconciliation reads what it traces and reports.
GRANT SELECT ON core.dispute TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
GRANT SELECT, INSERT, UPDATE ON core.dispute TO cdp_loader;
GRANT SELECT (source, source_record_id, financial_transaction_id, status) ON core.dispute TO cdp_reconcile;
-- reconcile.sql traces a dispute's money through its dispute (source_object_id: the dispute's id).
GRANT SELECT (source, source_object_id) ON core.balance_transaction TO cdp_reconcile;
