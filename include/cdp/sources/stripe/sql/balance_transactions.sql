-- Stripe balance transactions into core.balance_transaction, signed minor units as Stripe reports them,
-- with the financial transaction id traced through the charge (or the refund's charge). A charge's or
-- refund's movement whose object is not in the warehouse yet waits in the quarantine and is re-tried.
UPDATE sync_batch b
SET reason = 'unknown charge: the stripe charge in source is not in the warehouse yet', reason_value = b.payload ->> 'source'
WHERE b.reason IS NULL
  AND b.payload ->> 'type' IN ('charge', 'payment')
  AND NOT EXISTS (SELECT 1 FROM core.donation d WHERE d.source = 'stripe' AND d.source_record_id = b.payload ->> 'source');

UPDATE sync_batch b
SET reason = 'unknown refund: the stripe refund in source is not in the warehouse yet', reason_value = b.payload ->> 'source'
WHERE b.reason IS NULL
  AND b.payload ->> 'type' IN ('refund', 'payment_refund')
  AND NOT EXISTS (SELECT 1 FROM core.refund r WHERE r.source = 'stripe' AND r.source_record_id = b.payload ->> 'source');

INSERT INTO core.balance_transaction (financial_transaction_id, type, source_object_id, amount_minor, fee_minor,
                                      net_minor, currency, status, reporting_category, created_at, available_on,
                                      source, source_record_id)
SELECT DISTINCT ON (b.source_record_id)
       coalesce(d.financial_transaction_id, r.financial_transaction_id),
       b.payload ->> 'type', b.payload ->> 'source',
       (b.payload ->> 'amount')::bigint, (b.payload ->> 'fee')::bigint, (b.payload ->> 'net')::bigint,
       upper(b.payload ->> 'currency'), b.payload ->> 'status', b.payload ->> 'reporting_category',
       to_timestamp((b.payload ->> 'created')::bigint), to_timestamp((b.payload ->> 'available_on')::bigint),
       'stripe', b.source_record_id
FROM sync_batch b
LEFT JOIN core.donation d
       ON b.payload ->> 'type' IN ('charge', 'payment') AND d.source = 'stripe' AND d.source_record_id = b.payload ->> 'source'
LEFT JOIN core.refund r
       ON b.payload ->> 'type' IN ('refund', 'payment_refund') AND r.source = 'stripe' AND r.source_record_id = b.payload ->> 'source'
WHERE b.reason IS NULL
ORDER BY b.source_record_id, b.seq DESC
ON CONFLICT (source, source_record_id) DO UPDATE
SET financial_transaction_id = excluded.financial_transaction_id, type = excluded.type,
    source_object_id = excluded.source_object_id, amount_minor = excluded.amount_minor,
    fee_minor = excluded.fee_minor, net_minor = excluded.net_minor, currency = excluded.currency,
    status = excluded.status, reporting_category = excluded.reporting_category,
    created_at = excluded.created_at, available_on = excluded.available_on, updated_at = now()
WHERE (core.balance_transaction.financial_transaction_id, core.balance_transaction.type,
       core.balance_transaction.source_object_id, core.balance_transaction.amount_minor,
       core.balance_transaction.fee_minor, core.balance_transaction.net_minor, core.balance_transaction.currency,
       core.balance_transaction.status, core.balance_transaction.reporting_category,
       core.balance_transaction.created_at, core.balance_transaction.available_on)
      IS DISTINCT FROM (excluded.financial_transaction_id, excluded.type, excluded.source_object_id,
                        excluded.amount_minor, excluded.fee_minor, excluded.net_minor, excluded.currency,
                        excluded.status, excluded.reporting_category, excluded.created_at,
                        excluded.available_on);

-- The processor's fee of a gift, from its charge's balance transaction.
UPDATE core.donation d
SET fee_minor = t.fee_minor, updated_at = now()
FROM core.balance_transaction t
JOIN sync_batch b ON b.source_record_id = t.source_record_id AND b.reason IS NULL
WHERE t.source = 'stripe'
  AND t.type IN ('charge', 'payment')
  AND d.source = 'stripe'
  AND d.source_record_id = t.source_object_id
  AND d.fee_minor IS DISTINCT FROM t.fee_minor;
