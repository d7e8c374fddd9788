-- Which account each Salesforce contact belongs to (Contact.AccountId), kept so that the link to the
-- household or organisation is made by whichever stream, contacts or accounts, arrives second.
INSERT INTO core.crm_account_contact (source, contact_source_id, account_source_id)
SELECT DISTINCT ON (b.source_record_id) 'salesforce', b.source_record_id, b.payload ->> 'AccountId'
FROM sync_batch b
WHERE b.reason IS NULL AND nullif(b.payload ->> 'AccountId', '') IS NOT NULL
  AND NOT coalesce((b.payload ->> 'IsDeleted')::boolean, false)
ORDER BY b.source_record_id, b.seq DESC
ON CONFLICT (source, contact_source_id) DO UPDATE
SET account_source_id = excluded.account_source_id, updated_at = now()
WHERE core.crm_account_contact.account_source_id IS DISTINCT FROM excluded.account_source_id;

-- A contact taken out of its account in the CRM loses the relation (its person keeps the last household).
DELETE FROM core.crm_account_contact l
USING sync_batch b
WHERE b.reason IS NULL
  AND nullif(b.payload ->> 'AccountId', '') IS NULL
  AND l.source = 'salesforce'
  AND l.contact_source_id = b.source_record_id;
