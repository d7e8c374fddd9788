-- The CRM as a fourth side of the monthly reconciliation, and money held in the quarantine named as such.
--
-- crm_minor: the Salesforce Opportunity amount (closed-won) of each gift, beside the warehouse, Stripe and
-- ledger amounts. New classes of ops.reconciliation_result:
--   crm_amount_mismatch  the gift's closed-won Opportunity amount or currency differs from the donation;
--   stripe_quarantined   a Stripe balance transaction of the month waiting in ops.quarantine (its charge
--                        never reached the warehouse): the money is at Stripe and in the quarantine, not lost.
ALTER TABLE ops.reconciliation_result ADD COLUMN crm_minor bigint;
ALTER TABLE ops.reconciliation_total ADD COLUMN crm_minor bigint NOT NULL DEFAULT 0;

ALTER TABLE ops.reconciliation_result DROP CONSTRAINT reconciliation_result_class_check;
ALTER TABLE ops.reconciliation_result ADD CONSTRAINT reconciliation_result_class_check CHECK (class IN (
    'amount_mismatch', 'currency_mismatch', 'in_warehouse_not_ledger', 'in_ledger_not_warehouse', 'in_stripe_only',
    'not_in_stripe', 'duplicate', 'fee_mismatch', 'refund_mismatch', 'payout_mismatch', 'crm_amount_mismatch',
    'stripe_quarantined'));
