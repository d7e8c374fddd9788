-- Moodle users → incoming_people (then _resolve_people.sql). Profile fields live in customfields.
CREATE TEMP TABLE incoming_people ON COMMIT DROP AS
SELECT DISTINCT ON (b.source_record_id)
       b.source_record_id,
       nullif(trim(b.payload ->> 'firstname'), '') AS given_name,
       nullif(nullif(trim(b.payload ->> 'lastname'), ''), '-') AS family_name,
       nullif(trim(b.payload ->> 'email'), '') AS email,
       (SELECT nullif(f ->> 'value', '') FROM jsonb_array_elements(b.payload -> 'customfields') f
         WHERE f ->> 'shortname' = 'phone' LIMIT 1) AS phone,
       (SELECT nullif(f ->> 'value', '')::date FROM jsonb_array_elements(b.payload -> 'customfields') f
         WHERE f ->> 'shortname' = 'dateofbirth' LIMIT 1) AS date_of_birth,
       nullif(b.payload ->> 'country', '') AS country,
       to_timestamp((b.payload ->> 'timemodified')::bigint) AS observed_at,
       true AS is_learner,
       false AS is_donor,
       NULL::uuid AS person_id,
       false AS is_new
FROM sync_batch b
WHERE b.reason IS NULL
ORDER BY b.source_record_id, b.seq DESC;
