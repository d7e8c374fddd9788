-- NPSP partial soft credits into core.donation_soft_credit: the household member credited for a gift
-- someone else paid. The gift (found by its opportunity) and the credited contact must already be in the
-- warehouse; a soft credit whose gift or contact is not there yet waits in the quarantine and is re-tried.
UPDATE sync_batch b
SET reason = 'unknown opportunity: the salesforce opportunity in npsp__Opportunity__c has no gift in the warehouse yet',
    reason_value = b.payload ->> 'npsp__Opportunity__c'
WHERE b.reason IS NULL
  AND NOT EXISTS (SELECT 1 FROM core.donation d WHERE d.crm_source_record_id = b.payload ->> 'npsp__Opportunity__c');

UPDATE sync_batch b
SET reason = 'unknown contact: the salesforce contact in npsp__Contact__c is not in the warehouse',
    reason_value = b.payload ->> 'npsp__Contact__c'
WHERE b.reason IS NULL
  AND NOT EXISTS (SELECT 1 FROM core.person_source_id m
                  WHERE m.source = 'salesforce.contact' AND m.source_record_id = b.payload ->> 'npsp__Contact__c');

-- What soft_credit_land.sql lands: one row per soft credit, credited as source 'salesforce'.
CREATE TEMP TABLE incoming_credits ON COMMIT DROP AS
SELECT DISTINCT ON (b.source_record_id)
       b.seq,
       b.source_record_id,
       d.donation_id,
       coalesce(p.merged_into, p.person_id) AS person_id,
       ((b.payload ->> 'npsp__Amount__c')::numeric * 100)::bigint AS amount_minor,
       coalesce(nullif(trim(b.payload ->> 'npsp__Role_Name__c'), ''), 'soft credit') AS role,
       'salesforce'::text AS credit_source
FROM sync_batch b
JOIN core.donation d ON d.crm_source_record_id = b.payload ->> 'npsp__Opportunity__c'
JOIN core.person_source_id m ON m.source = 'salesforce.contact' AND m.source_record_id = b.payload ->> 'npsp__Contact__c'
JOIN core.person p ON p.person_id = m.person_id
WHERE b.reason IS NULL
ORDER BY b.source_record_id, b.seq DESC;

-- A partial soft credit says how much of the gift its contact is credited: it replaces the full credit of
-- that contact's role on the gift (contact_role_soft_credit.sql).
DELETE FROM core.donation_soft_credit s
USING incoming_credits i
JOIN sync_batch b ON b.seq = i.seq AND b.reason IS NULL
WHERE s.source = 'salesforce.contact_role' AND s.donation_id = i.donation_id AND s.person_id = i.person_id;
