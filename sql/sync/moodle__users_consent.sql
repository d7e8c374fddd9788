-- The registration form's consent statements, from Moodle profile fields (after _resolve_people.sql, so
-- every valid user has a person id in incoming_people), into incoming_consent (then _land_consent.sql):
--   * marketingconsent ("I agree to receive news by email"): 1 given, 0 refused (a 0 after a 1 is a
--     withdrawal), purpose fundraising;
--   * parentalconsent: pending / verified parental consent for the course messages the registration
--     covers; none or empty states nothing, unless consent was recorded before (then it was withdrawn).
-- stated_at is the user record's timemodified: the time of the version of the form we read.
CREATE TEMP TABLE incoming_consent ON COMMIT DROP AS
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
       'fundraising'::text AS purpose,
       CASE f.marketing WHEN '1' THEN 'given' WHEN '0' THEN 'refused' END AS status,
       'moodle.user:' || f.source_record_id || ':marketingconsent' AS statement_key,
       f.stated_at,
       'consent'::text AS lawful_basis,
       p.jurisdiction,
       'moodle.user:' || f.source_record_id || '@' || f.version AS receipt_id,
       NULL::text AS parental_method,
       'self'::text AS given_by,
       jsonb_build_object('form', 'moodle registration', 'field', 'marketingconsent', 'value', f.marketing,
                          'moodle_user_id', f.source_record_id, 'timemodified', f.version) AS evidence
FROM fields f
JOIN incoming_people i ON i.source_record_id = f.source_record_id
JOIN core.person p ON p.person_id = i.person_id
WHERE f.marketing IS NOT NULL
UNION ALL
SELECT i.person_id,
       'course_messages',
       CASE f.parental WHEN 'pending' THEN 'parental_consent_pending'
                       WHEN 'verified' THEN 'parental_consent_verified' END,
       'moodle.user:' || f.source_record_id || ':parentalconsent',
       f.stated_at,
       'consent',
       p.jurisdiction,
       'moodle.user:' || f.source_record_id || '@' || f.version,
       'registration form (Moodle profile field parentalconsent)',
       'parent or guardian',
       jsonb_build_object('form', 'moodle registration', 'field', 'parentalconsent', 'value', f.parental,
                          'moodle_user_id', f.source_record_id, 'timemodified', f.version)
FROM fields f
JOIN incoming_people i ON i.source_record_id = f.source_record_id
JOIN core.person p ON p.person_id = i.person_id
WHERE f.parental IS NOT NULL;
