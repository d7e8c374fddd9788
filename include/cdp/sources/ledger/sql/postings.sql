-- The finance ledger export (one CSV line per posting, amounts as signed decimal text in major units)
-- into core.ledger_posting in signed minor units, keyed by the line's reference. Matching postings to
-- gifts is the reconciliation's job, so no line waits for a parent here.
INSERT INTO core.ledger_posting (financial_transaction_id, posting_date, account, amount_minor, currency, reference,
                                 source, source_record_id)
SELECT DISTINCT ON (b.source_record_id)
       trim(b.payload ->> 'transaction_id'),
       (b.payload ->> 'posting_date')::date,
       trim(b.payload ->> 'account'),
       (trim(b.payload ->> 'amount')::numeric * 100)::bigint,
       upper(trim(b.payload ->> 'currency')),
       b.payload ->> 'reference',
       'ledger', b.source_record_id
FROM sync_batch b
WHERE b.reason IS NULL
ORDER BY b.source_record_id, b.seq DESC
ON CONFLICT (source, source_record_id) DO UPDATE
SET financial_transaction_id = excluded.financial_transaction_id, posting_date = excluded.posting_date,
    account = excluded.account, amount_minor = excluded.amount_minor, currency = excluded.currency,
    reference = excluded.reference, updated_at = now()
WHERE (core.ledger_posting.financial_transaction_id, core.ledger_posting.posting_date, core.ledger_posting.account,
       core.ledger_posting.amount_minor, core.ledger_posting.currency, core.ledger_posting.reference)
      IS DISTINCT FROM (excluded.financial_transaction_id, excluded.posting_date, excluded.account,
                        excluded.amount_minor, excluded.currency, excluded.reference);
