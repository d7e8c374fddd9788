-- Legacy gifts (amounts already exact integer minor units) into core.donation, to their giver's person.
INSERT INTO core.donation (financial_transaction_id, person_id, amount_minor, currency, received_at, status,
                           source, source_record_id)
SELECT 'legacy_donors:' || g.donor_ref, coalesce(p.merged_into, p.person_id), g.amount_minor, g.currency,
       g.gift_date::timestamp AT TIME ZONE 'UTC', 'succeeded', 'legacy_donors', g.donor_ref
FROM legacy_gifts g
JOIN core.person_source_id m ON m.source = 'legacy_donors' AND m.source_record_id = g.email_key
JOIN core.person p ON p.person_id = m.person_id
ON CONFLICT (source, source_record_id) DO UPDATE
SET person_id = excluded.person_id, amount_minor = excluded.amount_minor, currency = excluded.currency,
    received_at = excluded.received_at, updated_at = now()
WHERE (core.donation.person_id, core.donation.amount_minor, core.donation.currency, core.donation.received_at)
      IS DISTINCT FROM (excluded.person_id, excluded.amount_minor, excluded.currency, excluded.received_at);
