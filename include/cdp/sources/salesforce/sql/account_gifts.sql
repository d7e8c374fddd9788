-- Gifts to the CRM account that made them (Opportunity.AccountId, kept as core.donation.crm_account_id):
-- a household account sets the gift's household, an organisation account its organisation. Run by the
-- Account stream; the Opportunity stream sets both itself when the account is already here.
UPDATE core.donation d
SET household_id = h.household_id, updated_at = now()
FROM core.household h
WHERE h.source = 'salesforce'
  AND h.source_record_id = d.crm_account_id
  AND d.household_id IS DISTINCT FROM h.household_id;

UPDATE core.donation d
SET organization_id = o.organization_id, updated_at = now()
FROM core.organization o
WHERE o.source = 'salesforce'
  AND o.source_record_id = d.crm_account_id
  AND d.organization_id IS DISTINCT FROM o.organization_id;
