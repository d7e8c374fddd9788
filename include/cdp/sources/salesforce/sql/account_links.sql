-- Link people to the accounts of their Salesforce contacts: a household account sets the person's
-- household, an organisation account makes the person one of its contacts. Run by both the Contact and
-- the Account stream, so the link completes whichever arrives second. No-op rows are skipped.
WITH linked AS (
    SELECT DISTINCT ON (coalesce(p.merged_into, p.person_id))
           coalesce(p.merged_into, p.person_id) AS person_id, h.household_id
    FROM core.crm_account_contact l
    JOIN core.person_source_id m ON m.source = 'salesforce.contact' AND m.source_record_id = l.contact_source_id
    JOIN core.person p ON p.person_id = m.person_id
    JOIN core.household h ON h.source = l.source AND h.source_record_id = l.account_source_id
    WHERE l.source = 'salesforce'
    ORDER BY coalesce(p.merged_into, p.person_id), l.updated_at DESC, l.contact_source_id
)
UPDATE core.person p
SET household_id = linked.household_id, updated_at = now()
FROM linked
WHERE p.person_id = linked.person_id
  AND p.household_id IS DISTINCT FROM linked.household_id;

INSERT INTO core.organization_membership (organization_id, person_id, role)
SELECT DISTINCT o.organization_id, coalesce(p.merged_into, p.person_id), 'contact'
FROM core.crm_account_contact l
JOIN core.person_source_id m ON m.source = 'salesforce.contact' AND m.source_record_id = l.contact_source_id
JOIN core.person p ON p.person_id = m.person_id
JOIN core.organization o ON o.source = l.source AND o.source_record_id = l.account_source_id
WHERE l.source = 'salesforce'
ON CONFLICT DO NOTHING;
