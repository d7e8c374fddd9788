-- Cleaned legacy LMS learners → incoming_people (then ../sync/_resolve_people.sql, source legacy_lms).
-- The learner id is the source record id; the row's registration day is when its values were stated.
CREATE TEMP TABLE incoming_people ON COMMIT DROP AS
SELECT DISTINCT ON (trim(b.values ->> 'learner_id'))
       trim(b.values ->> 'learner_id') AS source_record_id,
       nullif(trim(b.values ->> 'first_name'), '') AS given_name,
       nullif(trim(b.values ->> 'last_name'), '') AS family_name,
       nullif(trim(b.values ->> 'email'), '') AS email,
       nullif(trim(b.values ->> 'phone'), '') AS phone,
       nullif(trim(b.values ->> 'date_of_birth'), '')::date AS date_of_birth,
       NULL::text AS country,
       (nullif(trim(b.values ->> 'registered_on'), '')::date)::timestamp AT TIME ZONE 'UTC' AS observed_at,
       true AS is_learner,
       false AS is_donor,
       NULL::uuid AS person_id,
       false AS is_new
FROM legacy_batch b
ORDER BY trim(b.values ->> 'learner_id'), b.row_key;
