-- Stripe charges → core.donation, one row per financial transaction id, amounts in minor units.
-- The gift's id is the charge's own id (why: cdp.sources.stripe's docstring); a connection that names a
-- metadata key (ftid_metadata_key) takes that metadata value instead, and a charge without it waits in
-- the quarantine, named for the missing key.
UPDATE sync_batch b
SET reason = 'missing required field metadata.' || %(ftid_metadata_key)s
             || ' (the connection keys gifts by this metadata key)'
WHERE b.reason IS NULL
  AND nullif(%(ftid_metadata_key)s, '') IS NOT NULL
  AND nullif(trim(b.payload -> 'metadata' ->> %(ftid_metadata_key)s), '') IS NULL;

INSERT INTO core.donation (financial_transaction_id, person_id, amount_minor, currency, received_at, status,
                           refunded_minor, campaign, source, source_record_id)
SELECT DISTINCT ON (b.source_record_id)
       CASE WHEN nullif(%(ftid_metadata_key)s, '') IS NULL THEN b.source_record_id
            ELSE trim(b.payload -> 'metadata' ->> %(ftid_metadata_key)s) END,
       coalesce(p.merged_into, p.person_id),
       (b.payload ->> 'amount')::bigint,
       upper(b.payload ->> 'currency'),
       to_timestamp((b.payload ->> 'created')::bigint),
       CASE
           WHEN (b.payload ->> 'amount_refunded')::bigint >= (b.payload ->> 'amount')::bigint
                AND (b.payload ->> 'amount_refunded')::bigint > 0 THEN 'refunded'
           WHEN (b.payload ->> 'amount_refunded')::bigint > 0 THEN 'partially_refunded'
           ELSE b.payload ->> 'status'
       END,
       coalesce((b.payload ->> 'amount_refunded')::bigint, 0),
       b.payload #>> '{metadata,campaign}',
       'stripe', b.source_record_id
FROM sync_batch b
LEFT JOIN core.person_source_id m
       ON m.source = 'stripe.billing'
      AND m.source_record_id = coalesce(b.payload ->> 'customer', lower(trim(b.payload #>> '{billing_details,email}')))
LEFT JOIN core.person p ON p.person_id = m.person_id
WHERE b.reason IS NULL
-- the first version of a record is its newest state (cdp.sources.stripe: listed as now, then events newest first)
ORDER BY b.source_record_id, b.seq
ON CONFLICT (financial_transaction_id) DO UPDATE
SET person_id = excluded.person_id, amount_minor = excluded.amount_minor, currency = excluded.currency,
    received_at = excluded.received_at, status = excluded.status, refunded_minor = excluded.refunded_minor,
    campaign = excluded.campaign, updated_at = now()
WHERE (core.donation.person_id, core.donation.amount_minor, core.donation.currency, core.donation.received_at,
       core.donation.status, core.donation.refunded_minor, core.donation.campaign)
      IS DISTINCT FROM (excluded.person_id, excluded.amount_minor, excluded.currency, excluded.received_at,
                        excluded.status, excluded.refunded_minor, excluded.campaign);
