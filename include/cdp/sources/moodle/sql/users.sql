-- Moodle users → incoming_people (then _resolve_people.sql). Profile fields live in customfields.
-- A user whose latest version is deleted (deleted = 1: Moodle scrambled its username and email) is no person
-- to resolve: users_deleted.sql soft-deletes its identity instead.
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
  AND NOT EXISTS (SELECT 1 FROM sync_batch later
                  WHERE later.source_record_id = b.source_record_id AND later.reason IS NULL
                    AND later.payload ->> 'deleted' IN ('1', 'true'))
ORDER BY b.source_record_id, b.seq DESC;
