-- Salesforce NPSP Accounts: household accounts into core.household, organisation accounts into
-- core.organization (NPSP's Type mapped to our kinds). No-op rows are skipped, so a re-run writes nothing.
CREATE TEMP TABLE incoming_accounts ON COMMIT DROP AS
SELECT DISTINCT ON (b.source_record_id)
       b.source_record_id,
       trim(b.payload ->> 'Name') AS name,
       coalesce(b.payload ->> 'npe01__SYSTEM_AccountType__c' = 'Household Account'
                OR b.payload ->> 'Type' = 'Household', false) AS is_household,
       CASE
           WHEN b.payload ->> 'Type' ~* 'partner' THEN 'partner'
           WHEN b.payload ->> 'Type' ~* 'foundation|funder|grant' THEN 'funder'
           WHEN b.payload ->> 'Type' ~* 'school|universit|college|education' THEN 'school'
           WHEN b.payload ->> 'Type' ~* 'corporat|business|employer|company' THEN 'employer'
           ELSE 'other'
       END AS kind
FROM sync_batch b
WHERE b.reason IS NULL
ORDER BY b.source_record_id, b.seq DESC;

INSERT INTO core.household (name, source, source_record_id)
SELECT name, 'salesforce', source_record_id
FROM incoming_accounts
WHERE is_household
ON CONFLICT (source, source_record_id) DO UPDATE
SET name = excluded.name, updated_at = now()
WHERE core.household.name IS DISTINCT FROM excluded.name;

INSERT INTO core.organization (name, kind, source, source_record_id)
SELECT name, kind, 'salesforce', source_record_id
FROM incoming_accounts
WHERE NOT is_household
ON CONFLICT (source, source_record_id) DO UPDATE
SET name = excluded.name, kind = excluded.kind, updated_at = now()
WHERE (core.organization.name, core.organization.kind) IS DISTINCT FROM (excluded.name, excluded.kind);
