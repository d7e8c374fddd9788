-- SurveyMonkey contacts → incoming_people (then _resolve_people.sql, with people_update 'fill': a contact's
-- name and email fill what the LMS and CRM left empty, never overwrite them). SurveyMonkey keeps one
-- contact per email address and no date of birth or country. The contacts and responses streams take turns
-- here so that whichever commits second sees the other's rows (see contacts_link.sql).
SELECT pg_advisory_xact_lock(hashtext('cdp.sync:surveymonkey.respondents'));

CREATE TEMP TABLE incoming_people ON COMMIT DROP AS
SELECT DISTINCT ON (b.source_record_id)
       b.source_record_id,
       nullif(trim(b.payload ->> 'first_name'), '') AS given_name,
       nullif(trim(b.payload ->> 'last_name'), '') AS family_name,
       nullif(trim(b.payload ->> 'email'), '') AS email,
       nullif(trim(b.payload ->> 'phone_number'), '') AS phone,
       NULL::date AS date_of_birth,
       NULL::text AS country,
       false AS is_learner,
       false AS is_donor,
       NULL::uuid AS person_id,
       false AS is_new
FROM sync_batch b
WHERE b.reason IS NULL
ORDER BY b.source_record_id, b.seq DESC;
