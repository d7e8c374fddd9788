-- Stripe refunds into core.refund, linked to the donation of their charge. A refund whose charge is not
-- in the warehouse yet waits in the quarantine and is re-tried by every later sync.
-- Stripe's schema lets a refund's charge be null (a refund of a payment that is no charge): it cannot be
-- placed on a gift, so it waits with that reason rather than being dropped.
UPDATE sync_batch b
SET reason = 'refund names no charge: stripe refund ' || b.source_record_id || ' cannot be placed on a gift'
WHERE b.reason IS NULL
  AND nullif(b.payload ->> 'charge', '') IS NULL;

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
       upper(b.payload ->> 'currency'),
       coalesce(b.payload ->> 'status', 'unknown'),  -- nullable in Stripe's schema; only 'succeeded' counts
       b.payload ->> 'reason',
       to_timestamp((b.payload ->> 'created')::bigint), 'stripe', b.source_record_id
FROM sync_batch b
JOIN core.donation d ON d.source = 'stripe' AND d.source_record_id = b.payload ->> 'charge'
WHERE b.reason IS NULL
-- the first version of a record is its newest state (cdp.sources.stripe: listed as now, then events newest first)
ORDER BY b.source_record_id, b.seq
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

-- A refund made later reaches the donation through this stream: the donation's refunded amount is at least
-- what its succeeded refunds add up to (the charge's own amount_refunded may be ahead of the refunds read).
-- When a refund of the batch has failed or was canceled (an event says so after it had succeeded), the
-- refunded amount is exactly the succeeded refunds again: money that went back to the donor's card came back.
WITH touched AS (
    SELECT d.donation_id, bool_or(b.payload ->> 'status' IN ('failed', 'canceled')) AS reversed
    FROM sync_batch b
    JOIN core.donation d ON d.source = 'stripe' AND d.source_record_id = b.payload ->> 'charge'
    WHERE b.reason IS NULL
    GROUP BY d.donation_id
), refunded AS (
    SELECT t.donation_id, t.reversed,
           coalesce(sum(r.amount_minor) FILTER (WHERE r.status = 'succeeded'), 0)::bigint AS minor
    FROM touched t
    LEFT JOIN core.refund r ON r.donation_id = t.donation_id
    GROUP BY t.donation_id, t.reversed
), target AS (
    SELECT d.donation_id,
           CASE WHEN f.reversed THEN f.minor ELSE greatest(d.refunded_minor, f.minor) END AS minor
    FROM refunded f JOIN core.donation d USING (donation_id)
    WHERE f.reversed OR f.minor > 0
)
UPDATE core.donation d
SET refunded_minor = t.minor,
    status = CASE WHEN t.minor >= d.amount_minor THEN 'refunded'
                  WHEN t.minor > 0 THEN 'partially_refunded'
                  WHEN d.status IN ('refunded', 'partially_refunded') THEN 'succeeded'
                  ELSE d.status END,
    updated_at = now()
FROM target t
WHERE d.donation_id = t.donation_id
  AND (d.refunded_minor, d.status) IS DISTINCT FROM
      (t.minor, CASE WHEN t.minor >= d.amount_minor THEN 'refunded'
                     WHEN t.minor > 0 THEN 'partially_refunded'
                     WHEN d.status IN ('refunded', 'partially_refunded') THEN 'succeeded'
                     ELSE d.status END);
