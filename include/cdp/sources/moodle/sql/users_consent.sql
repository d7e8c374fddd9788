-- The registration form's consent statements, from Moodle profile fields (after _resolve_people.sql, so
-- every valid user has a person id in incoming_people), into registration_answers (then
-- _registration_consent.sql and _land_consent.sql):
--   * marketingconsent ("I agree to receive news by email"): 1 given, 0 refused;
--   * parentalconsent: pending / verified; none or empty states nothing (a withdrawal when consent was
--     recorded before).
-- stated_at is the user record's timemodified: the time of the version of the form we read.
CREATE TEMP TABLE registration_answers ON COMMIT DROP AS
WITH users AS (
    SELECT DISTINCT ON (b.source_record_id) b.source_record_id, b.payload
    FROM sync_batch b
    WHERE b.reason IS NULL
    ORDER BY b.source_record_id, b.seq DESC
), fields AS (
    SELECT u.source_record_id,
           to_timestamp((u.payload ->> 'timemodified')::bigint) AS stated_at,
           u.payload ->> 'timemodified' AS version,
           (SELECT f ->> 'value' FROM jsonb_array_elements(u.payload -> 'customfields') f
             WHERE f ->> 'shortname' = 'marketingconsent' LIMIT 1) AS marketing,
           (SELECT f ->> 'value' FROM jsonb_array_elements(u.payload -> 'customfields') f
             WHERE f ->> 'shortname' = 'parentalconsent' LIMIT 1) AS parental
    FROM users u
)
SELECT i.person_id,
       f.stated_at,
       'moodle.user:' || f.source_record_id || '@' || f.version AS receipt_id,
       f.marketing IS NOT NULL AS marketing_answered,
       CASE f.marketing WHEN '1' THEN 'given' WHEN '0' THEN 'refused' END AS marketing_status,
       'moodle.user:' || f.source_record_id || ':marketingconsent' AS marketing_key,
       jsonb_build_object('form', 'moodle registration', 'field', 'marketingconsent', 'value', f.marketing,
                          'moodle_user_id', f.source_record_id, 'timemodified', f.version) AS marketing_evidence,
       f.parental IS NOT NULL AS parental_answered,
       CASE f.parental WHEN 'pending' THEN 'parental_consent_pending'
                       WHEN 'verified' THEN 'parental_consent_verified' END AS parental_status,
       'moodle.user:' || f.source_record_id || ':parentalconsent' AS parental_key,
       'registration form (Moodle profile field parentalconsent)'::text AS parental_method,
       'parent or guardian'::text AS parental_given_by,
       jsonb_build_object('form', 'moodle registration', 'field', 'parentalconsent', 'value', f.parental,
                          'moodle_user_id', f.source_record_id, 'timemodified', f.version) AS parental_evidence
FROM fields f
JOIN incoming_people i ON i.source_record_id = f.source_record_id;
