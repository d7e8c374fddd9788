-- Stripe refunds into core.refund, linked to the donation of their charge. A refund whose charge is not
-- in the warehouse yet waits in the quarantine and is re-tried by every later sync.
UPDATE sync_batch b
SET reason = 'unknown charge: the stripe charge in charge is not in the warehouse yet', reason_value = b.payload ->> 'charge'
WHERE b.reason IS NULL
  AND NOT EXISTS (SELECT 1 FROM core.donation d WHERE d.source = 'stripe' AND d.source_record_id = b.payload ->> 'charge');

UPDATE sync_batch b
SET reason = 'refund currency differs from its charge''s', reason_value = upper(b.payload ->> 'currency') || ' ' || d.currency
FROM core.donation d
WHERE b.reason IS NULL
  AND d.source = 'stripe'
  AND d.source_record_id = b.payload ->> 'charge'
  AND d.currency <> upper(b.payload ->> 'currency');

INSERT INTO core.refund (donation_id, financial_transaction_id, charge_id, amount_minor, currency, status, reason,
                         created_at, source, source_record_id)
SELECT DISTINCT ON (b.source_record_id)
       d.donation_id, d.financial_transaction_id, b.payload ->> 'charge', (b.payload ->> 'amount')::bigint,
       upper(b.payload ->> 'currency'), b.payload ->> 'status', b.payload ->> 'reason',
       to_timestamp((b.payload ->> 'created')::bigint), 'stripe', b.source_record_id
FROM sync_batch b
JOIN core.donation d ON d.source = 'stripe' AND d.source_record_id = b.payload ->> 'charge'
WHERE b.reason IS NULL
ORDER BY b.source_record_id, b.seq DESC
ON CONFLICT (source, source_record_id) DO UPDATE
SET donation_id = excluded.donation_id, financial_transaction_id = excluded.financial_transaction_id,
    charge_id = excluded.charge_id, amount_minor = excluded.amount_minor, currency = excluded.currency,
    status = excluded.status, reason = excluded.reason, created_at = excluded.created_at, updated_at = now()
WHERE (core.refund.donation_id, core.refund.financial_transaction_id, core.refund.charge_id,
       core.refund.amount_minor, core.refund.currency, core.refund.status, core.refund.reason,
       core.refund.created_at)
      IS DISTINCT FROM (excluded.donation_id, excluded.financial_transaction_id, excluded.charge_id,
                        excluded.amount_minor, excluded.currency, excluded.status, excluded.reason,
                        excluded.created_at);

-- Charges are read by creation time, so a refund made later reaches the donation through this stream:
-- the donation's refunded amount is at least what its succeeded refunds add up to.
WITH refunded AS (
    SELECT r.donation_id, sum(r.amount_minor)::bigint AS minor
    FROM core.refund r
    WHERE r.status = 'succeeded'
      AND r.donation_id IN (SELECT d.donation_id FROM sync_batch b
                            JOIN core.donation d ON d.source = 'stripe' AND d.source_record_id = b.payload ->> 'charge'
                            WHERE b.reason IS NULL)
    GROUP BY r.donation_id
)
UPDATE core.donation d
SET refunded_minor = greatest(d.refunded_minor, refunded.minor),
    status = CASE WHEN greatest(d.refunded_minor, refunded.minor) >= d.amount_minor THEN 'refunded'
                  ELSE 'partially_refunded' END,
    updated_at = now()
FROM refunded
WHERE d.donation_id = refunded.donation_id
  AND (d.refunded_minor, d.status) IS DISTINCT FROM
      (greatest(d.refunded_minor, refunded.minor),
       CASE WHEN greatest(d.refunded_minor, refunded.minor) >= d.amount_minor THEN 'refunded'
            ELSE 'partially_refunded' END);
