-- Salesforce NPSP Contacts → incoming_people (then _resolve_people.sql).
CREATE TEMP TABLE incoming_people ON COMMIT DROP AS
SELECT DISTINCT ON (b.source_record_id)
       b.source_record_id,
       nullif(trim(b.payload ->> 'FirstName'), '') AS given_name,
       nullif(trim(b.payload ->> 'LastName'), '') AS family_name,
       nullif(trim(coalesce(b.payload ->> 'Email', b.payload ->> 'npe01__HomeEmail__c')), '') AS email,
       nullif(b.payload ->> 'Phone', '') AS phone,
       nullif(b.payload ->> 'Birthdate', '')::date AS date_of_birth,
       nullif(b.payload ->> 'MailingCountry', '') AS country,
       (b.payload ->> 'SystemModstamp')::timestamptz AS observed_at,
       false AS is_learner,
       false AS is_donor,
       NULL::uuid AS person_id,
       false AS is_new
FROM sync_batch b
WHERE b.reason IS NULL
  -- A deleted or merged contact (queryAll) is no person to resolve: contact_removals.sql applies it.
  AND NOT coalesce((b.payload ->> 'IsDeleted')::boolean, false)
ORDER BY b.source_record_id, b.seq DESC;
