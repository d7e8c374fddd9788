-- 0025 Gifts that never reached the CRM (issue 21): the monthly reconciliation compares the warehouse's
-- donations with the CRM's Opportunities, not only their amounts. A gift with no Opportunity at all, once the
-- CRM has been read past the month's end, is a row of class 'not_in_crm' (the browser walk found the sandbox's
-- planted gifts missing from the CRM went unreported).
ALTER TABLE ops.reconciliation_result DROP CONSTRAINT reconciliation_result_class_check;
ALTER TABLE ops.reconciliation_result ADD CONSTRAINT reconciliation_result_class_check CHECK (class IN (
    'amount_mismatch', 'currency_mismatch', 'in_warehouse_not_ledger', 'in_ledger_not_warehouse', 'in_stripe_only',
    'not_in_stripe', 'duplicate', 'fee_mismatch', 'refund_mismatch', 'payout_mismatch', 'crm_amount_mismatch',
    'stripe_quarantined', 'dispute', 'not_in_crm'));
