-- Soft credits of either kind (soft_credit.sql: NPSP partial soft credits; contact_role_soft_credit.sql:
-- contact roles), as the stream's first statements left them in incoming_credits, into
-- core.donation_soft_credit under their credit_source.

-- A person is credited once per gift and role: a second soft credit saying the same is held for review.
UPDATE sync_batch b
SET reason = 'duplicate soft credit: the same person, gift and role are already credited by another soft credit',
    reason_value = coalesce(existing.source_record_id, earlier.source_record_id)
FROM incoming_credits i
LEFT JOIN core.donation_soft_credit existing
       ON (existing.donation_id, existing.person_id, existing.role) = (i.donation_id, i.person_id, i.role)
      AND existing.source_record_id <> i.source_record_id
LEFT JOIN incoming_credits earlier
       ON (earlier.donation_id, earlier.person_id, earlier.role) = (i.donation_id, i.person_id, i.role)
      AND earlier.source_record_id < i.source_record_id
WHERE b.seq = i.seq
  AND b.reason IS NULL
  AND (existing.source_record_id IS NOT NULL OR earlier.source_record_id IS NOT NULL);

INSERT INTO core.donation_soft_credit (donation_id, person_id, amount_minor, role, source, source_record_id)
SELECT i.donation_id, i.person_id, i.amount_minor, i.role, i.credit_source, i.source_record_id
FROM incoming_credits i
JOIN sync_batch b ON b.seq = i.seq AND b.reason IS NULL
ON CONFLICT (source, source_record_id) DO UPDATE
SET donation_id = excluded.donation_id, person_id = excluded.person_id, amount_minor = excluded.amount_minor,
    role = excluded.role
WHERE (core.donation_soft_credit.donation_id, core.donation_soft_credit.person_id,
       core.donation_soft_credit.amount_minor, core.donation_soft_credit.role)
      IS DISTINCT FROM (excluded.donation_id, excluded.person_id, excluded.amount_minor, excluded.role);
