-- Tables for the remaining synced streams (Stripe refunds and balance transactions, ledger postings, survey consent metadata, referral activity).
-- (placeholder: filled in by the issue that owns this revision)
SELECT 1;
