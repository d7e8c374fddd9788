-- Galaxy Digital users (volunteers) → incoming_people (then _resolve_people.sql): joined to a known person
-- by the shared exact keys (the source id, else normalised email + given name when unambiguous), else a
-- new person. The volunteer platform is not the authority for names or contact details: with
-- people_update = 'fill' it only fills what the LMS and CRM left empty.
CREATE TEMP TABLE incoming_people ON COMMIT DROP AS
SELECT DISTINCT ON (b.source_record_id)
       b.source_record_id,
       nullif(trim(b.payload ->> 'user_fname'), '') AS given_name,
       nullif(trim(b.payload ->> 'user_lname'), '') AS family_name,
       nullif(trim(b.payload ->> 'user_email'), '') AS email,
       nullif(trim(b.payload ->> 'user_phone'), '') AS phone,
       NULL::date AS date_of_birth,
       NULL::text AS country,
       (b.payload ->> 'updated_at')::timestamptz AS observed_at,
       false AS is_learner,
       false AS is_donor,
       NULL::uuid AS person_id,
       false AS is_new
FROM sync_batch b
WHERE b.reason IS NULL
ORDER BY b.source_record_id, b.seq DESC;
