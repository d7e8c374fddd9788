-- Stripe balance transactions into core.balance_transaction, signed minor units as Stripe reports them,
-- with the financial transaction id traced through the charge (or the refund's charge). A charge's or
-- refund's movement whose object is not in the warehouse yet waits in the quarantine and is re-tried.
-- A dispute (listed by /v1/disputes or carried by a charge.dispute.* event, see cdp.sources.stripe) lands in
-- core.dispute, and brings the balance transactions of the money it withdrew and reinstated; they land traced
-- to the disputed charge's gift. Stripe's schema lets a dispute's charge be the expanded charge object.
UPDATE sync_batch b
SET reason = 'unknown charge: the stripe charge in charge of this dispute is not in the warehouse yet',
    reason_value = coalesce(b.payload -> 'charge' ->> 'id', b.payload ->> 'charge')
WHERE b.reason IS NULL
  AND b.payload ->> 'object' = 'dispute'
  AND NOT EXISTS (SELECT 1 FROM core.donation d WHERE d.source = 'stripe'
                  AND d.source_record_id = coalesce(b.payload -> 'charge' ->> 'id', b.payload ->> 'charge'));

-- A batch may hold a dispute more than once (listed as it is now, and in events of its earlier states, which
-- Stripe lists newest first): the latest state is the one with the most money movements, closed over open.
INSERT INTO core.dispute (source, source_record_id, charge_id, payment_intent_id, donation_id,
                          financial_transaction_id, amount_minor, currency, status, reason, balance_transaction_ids,
                          created_at)
SELECT DISTINCT ON (b.source_record_id)
       'stripe', b.source_record_id, d.source_record_id,
       coalesce(b.payload -> 'payment_intent' ->> 'id', b.payload ->> 'payment_intent'),
       d.donation_id, d.financial_transaction_id, (b.payload ->> 'amount')::bigint, upper(b.payload ->> 'currency'),
       b.payload ->> 'status', b.payload ->> 'reason',
       coalesce(ARRAY(SELECT t.value ->> 'id' FROM jsonb_array_elements(b.payload -> 'balance_transactions') t
                      WHERE jsonb_typeof(b.payload -> 'balance_transactions') = 'array'), '{}'),
       to_timestamp((b.payload ->> 'created')::bigint)
FROM sync_batch b
JOIN core.donation d ON d.source = 'stripe'
                    AND d.source_record_id = coalesce(b.payload -> 'charge' ->> 'id', b.payload ->> 'charge')
WHERE b.reason IS NULL AND b.payload ->> 'object' = 'dispute'
ORDER BY b.source_record_id,
         CASE WHEN jsonb_typeof(b.payload -> 'balance_transactions') = 'array'
              THEN jsonb_array_length(b.payload -> 'balance_transactions') ELSE 0 END DESC,
         (b.payload ->> 'status' IN ('won', 'lost', 'warning_closed', 'charge_refunded', 'prevented')) DESC,
         b.seq
ON CONFLICT (source, source_record_id) DO UPDATE
SET charge_id = excluded.charge_id, payment_intent_id = excluded.payment_intent_id,
    donation_id = excluded.donation_id, financial_transaction_id = excluded.financial_transaction_id,
    amount_minor = excluded.amount_minor, currency = excluded.currency, status = excluded.status,
    reason = excluded.reason, balance_transaction_ids = excluded.balance_transaction_ids,
    created_at = excluded.created_at, updated_at = now()
WHERE (core.dispute.charge_id, core.dispute.payment_intent_id, core.dispute.donation_id,
       core.dispute.financial_transaction_id, core.dispute.amount_minor, core.dispute.currency, core.dispute.status,
       core.dispute.reason, core.dispute.balance_transaction_ids, core.dispute.created_at)
      IS DISTINCT FROM (excluded.charge_id, excluded.payment_intent_id, excluded.donation_id,
                        excluded.financial_transaction_id, excluded.amount_minor, excluded.currency, excluded.status,
                        excluded.reason, excluded.balance_transaction_ids, excluded.created_at);

INSERT INTO core.balance_transaction (financial_transaction_id, type, source_object_id, amount_minor, fee_minor,
                                      net_minor, currency, status, reporting_category, created_at, available_on,
                                      source, source_record_id)
SELECT DISTINCT ON (t.value ->> 'id')
       d.financial_transaction_id, t.value ->> 'type', b.source_record_id,
       (t.value ->> 'amount')::bigint, (t.value ->> 'fee')::bigint, (t.value ->> 'net')::bigint,
       upper(t.value ->> 'currency'), t.value ->> 'status', t.value ->> 'reporting_category',
       to_timestamp((t.value ->> 'created')::bigint), to_timestamp((t.value ->> 'available_on')::bigint),
       'stripe', t.value ->> 'id'
FROM sync_batch b
CROSS JOIN LATERAL jsonb_array_elements(b.payload -> 'balance_transactions') t
JOIN core.donation d ON d.source = 'stripe'
                    AND d.source_record_id = coalesce(b.payload -> 'charge' ->> 'id', b.payload ->> 'charge')
WHERE b.reason IS NULL AND b.payload ->> 'object' = 'dispute'
ORDER BY t.value ->> 'id', b.seq  -- the newest state first, as above
ON CONFLICT (source, source_record_id) DO UPDATE
SET financial_transaction_id = excluded.financial_transaction_id, type = excluded.type,
    source_object_id = excluded.source_object_id, amount_minor = excluded.amount_minor,
    fee_minor = excluded.fee_minor, net_minor = excluded.net_minor, currency = excluded.currency,
    status = excluded.status, reporting_category = excluded.reporting_category,
    created_at = excluded.created_at, available_on = excluded.available_on, updated_at = now()
WHERE (core.balance_transaction.financial_transaction_id, core.balance_transaction.amount_minor,
       core.balance_transaction.fee_minor, core.balance_transaction.status,
       core.balance_transaction.reporting_category)
      IS DISTINCT FROM (excluded.financial_transaction_id, excluded.amount_minor, excluded.fee_minor,
                        excluded.status, excluded.reporting_category);

-- Stripe's schema lets `source` be null; a charge's or refund's movement without one cannot be traced. A
-- refund that fails after its money left gives it back in a balance transaction of type refund_failure,
-- whose source is the refund: traced like the refund.
UPDATE sync_batch b
SET reason = 'balance transaction of type ' || (b.payload ->> 'type') || ' names no source object'
WHERE b.reason IS NULL
  AND b.payload ->> 'type' IN ('charge', 'payment', 'refund', 'payment_refund', 'refund_failure')
  AND nullif(b.payload ->> 'source', '') IS NULL;

UPDATE sync_batch b
SET reason = 'unknown charge: the stripe charge in source is not in the warehouse yet', reason_value = b.payload ->> 'source'
WHERE b.reason IS NULL
  AND b.payload ->> 'type' IN ('charge', 'payment')
  AND NOT EXISTS (SELECT 1 FROM core.donation d WHERE d.source = 'stripe' AND d.source_record_id = b.payload ->> 'source');

UPDATE sync_batch b
SET reason = 'unknown refund: the stripe refund in source is not in the warehouse yet', reason_value = b.payload ->> 'source'
WHERE b.reason IS NULL
  AND b.payload ->> 'type' IN ('refund', 'payment_refund', 'refund_failure')
  AND NOT EXISTS (SELECT 1 FROM core.refund r WHERE r.source = 'stripe' AND r.source_record_id = b.payload ->> 'source');

INSERT INTO core.balance_transaction (financial_transaction_id, type, source_object_id, amount_minor, fee_minor,
                                      net_minor, currency, status, reporting_category, created_at, available_on,
                                      source, source_record_id)
SELECT DISTINCT ON (b.source_record_id)
       coalesce(d.financial_transaction_id, r.financial_transaction_id, x.financial_transaction_id),
       b.payload ->> 'type', b.payload ->> 'source',
       (b.payload ->> 'amount')::bigint, (b.payload ->> 'fee')::bigint, (b.payload ->> 'net')::bigint,
       upper(b.payload ->> 'currency'), b.payload ->> 'status', b.payload ->> 'reporting_category',
       to_timestamp((b.payload ->> 'created')::bigint), to_timestamp((b.payload ->> 'available_on')::bigint),
       'stripe', b.source_record_id
FROM sync_batch b
LEFT JOIN core.donation d
       ON b.payload ->> 'type' IN ('charge', 'payment') AND d.source = 'stripe' AND d.source_record_id = b.payload ->> 'source'
LEFT JOIN core.refund r
       ON b.payload ->> 'type' IN ('refund', 'payment_refund', 'refund_failure') AND r.source = 'stripe' AND r.source_record_id = b.payload ->> 'source'
-- a dispute's movement listed here keeps the gift it was traced to through its dispute
LEFT JOIN core.balance_transaction x ON x.source = 'stripe' AND x.source_record_id = b.source_record_id
WHERE b.reason IS NULL AND b.payload ->> 'object' IS DISTINCT FROM 'dispute'
-- the first version of a record is its newest state (cdp.sources.stripe: listed as now, then events newest first)
ORDER BY b.source_record_id, b.seq
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
