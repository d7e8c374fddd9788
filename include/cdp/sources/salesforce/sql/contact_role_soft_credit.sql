-- NPSP's usual soft credits: an OpportunityContactRole that is not the gift's primary (donor) role credits
-- its contact with the gift's full amount (as NPSP's rollups count it), under the role's name. A partial
-- soft credit (npsp__Partial_Soft_Credit__c, soft_credit.sql) for the same gift and contact says how much
-- of it: it wins, and the contact role then adds nothing. Rows from contact roles have source
-- 'salesforce.contact_role'. The primary role (the donor) lands in raw only: the gift is the donor's already.
-- A soft credit whose gift or contact is not in the warehouse yet waits in the quarantine and is re-tried.
UPDATE sync_batch b
SET reason = 'unknown opportunity: the salesforce opportunity in OpportunityId has no gift in the warehouse yet',
    reason_value = b.payload ->> 'OpportunityId'
WHERE b.reason IS NULL
  AND NOT coalesce((b.payload ->> 'IsPrimary')::boolean, false)
  AND NOT EXISTS (SELECT 1 FROM core.donation d WHERE d.crm_source_record_id = b.payload ->> 'OpportunityId');

UPDATE sync_batch b
SET reason = 'unknown contact: the salesforce contact in ContactId is not in the warehouse',
    reason_value = b.payload ->> 'ContactId'
WHERE b.reason IS NULL
  AND NOT coalesce((b.payload ->> 'IsPrimary')::boolean, false)
  AND NOT EXISTS (SELECT 1 FROM core.person_source_id m
                  WHERE m.source = 'salesforce.contact' AND m.source_record_id = b.payload ->> 'ContactId');

-- What soft_credit_land.sql lands: one row per contact role, credited as source 'salesforce.contact_role'.
CREATE TEMP TABLE incoming_credits ON COMMIT DROP AS
SELECT DISTINCT ON (b.source_record_id)
       b.seq,
       b.source_record_id,
       d.donation_id,
       coalesce(p.merged_into, p.person_id) AS person_id,
       coalesce(d.crm_amount_minor, d.amount_minor) AS amount_minor,
       coalesce(nullif(trim(b.payload ->> 'Role'), ''), 'soft credit') AS role,
       'salesforce.contact_role'::text AS credit_source
FROM sync_batch b
JOIN core.donation d ON d.crm_source_record_id = b.payload ->> 'OpportunityId'
JOIN core.person_source_id m ON m.source = 'salesforce.contact' AND m.source_record_id = b.payload ->> 'ContactId'
JOIN core.person p ON p.person_id = m.person_id
WHERE b.reason IS NULL
  AND NOT coalesce((b.payload ->> 'IsPrimary')::boolean, false)
ORDER BY b.source_record_id, b.seq DESC;

-- A partial soft credit for the same gift and person carries the amount: the contact role adds nothing.
DELETE FROM incoming_credits i
USING core.donation_soft_credit s
WHERE s.source = 'salesforce' AND s.donation_id = i.donation_id AND s.person_id = i.person_id;

-- A contact role that became the primary one (the donor) is no soft credit any more.
DELETE FROM core.donation_soft_credit s
USING sync_batch b
WHERE b.reason IS NULL
  AND coalesce((b.payload ->> 'IsPrimary')::boolean, false)
  AND s.source = 'salesforce.contact_role' AND s.source_record_id = b.source_record_id;
