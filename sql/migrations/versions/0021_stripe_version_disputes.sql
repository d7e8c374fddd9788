-- 0021 Stripe as it really is (issue 16): the API version each run asked for, and disputes in the reconciliation.
--
-- The API version ("the API version pinned by default and recorded with each run").
--
-- A vendor that versions its API by request header (Stripe's Stripe-Version) answers in the shape of the
-- version asked for; the run records which, so a later change of shape can be traced to the run that first
-- asked for the new version. NULL for a source without a versioned API.
ALTER TABLE ops.sync_run ADD COLUMN api_version text;
COMMENT ON COLUMN ops.sync_run.api_version IS
    'The vendor API version the run asked for (e.g. Stripe-Version), NULL where the source has none.';

-- Disputes reach the reconciliation (issue 16): a gift whose Stripe money was withdrawn by a dispute (its
-- balance transactions of reporting category dispute / dispute_reversal, net) is a row of class 'dispute'.
ALTER TABLE ops.reconciliation_result DROP CONSTRAINT reconciliation_result_class_check;
ALTER TABLE ops.reconciliation_result ADD CONSTRAINT reconciliation_result_class_check CHECK (class IN (
    'amount_mismatch', 'currency_mismatch', 'in_warehouse_not_ledger', 'in_ledger_not_warehouse', 'in_stripe_only',
    'not_in_stripe', 'duplicate', 'fee_mismatch', 'refund_mismatch', 'payout_mismatch', 'crm_amount_mismatch',
    'stripe_quarantined', 'dispute'));
