-- Cleaned legacy CRM contacts → incoming_people (then ../sync/_resolve_people.sql, source legacy_crm).
-- A contact that names its LMS learner (and agrees with it: a conflicting one waits in ops.legacy_review)
-- is that learner's person through the learner's source identity; any other goes by the exact key.
CREATE TEMP TABLE incoming_people ON COMMIT DROP AS
SELECT DISTINCT ON (trim(b.values ->> 'contact_id'))
       trim(b.values ->> 'contact_id') AS source_record_id,
       nullif(trim(b.values ->> 'first_name'), '') AS given_name,
       nullif(trim(b.values ->> 'last_name'), '') AS family_name,
       nullif(trim(b.values ->> 'email'), '') AS email,
       nullif(trim(b.values ->> 'phone'), '') AS phone,
       NULL::date AS date_of_birth,
       NULL::text AS country,
       (nullif(trim(b.values ->> 'created_on'), '')::date)::timestamp AT TIME ZONE 'UTC' AS observed_at,
       false AS is_learner,
       false AS is_donor,
       coalesce(p.merged_into, p.person_id) AS person_id,
       false AS is_new
FROM legacy_batch b
LEFT JOIN core.person_source_id m
       ON m.source = 'legacy_lms' AND m.source_record_id = nullif(trim(b.values ->> 'lms_learner_id'), '')
LEFT JOIN core.person p ON p.person_id = m.person_id
ORDER BY trim(b.values ->> 'contact_id'), b.row_key;
