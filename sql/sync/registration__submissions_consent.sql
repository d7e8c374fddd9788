-- The registration form's consent statements (after _resolve_people.sql, so every valid submission has a
-- person id in incoming_people) into incoming_consent (then _land_consent.sql), by the same rules as the
-- Moodle registration consent (moodle__users_consent.sql):
--   * consent.marketing ("I agree to receive news by email"): true given, false refused (a false after a
--     true is a withdrawal), purpose fundraising; absent states nothing;
--   * consent.parental: pending / verified parental consent for the course messages the registration
--     covers; "none" or empty states nothing, unless consent was recorded before (then it was withdrawn).
-- A series is the person's answer to one question of the form, whichever submission gave it (as a Moodle
-- user's profile field is): a parent re-submitting with "none" withdraws what an earlier submission gave.
-- stated_at is submitted_at; the submission id is in the evidence.
CREATE TEMP TABLE incoming_consent ON COMMIT DROP AS
WITH submissions AS (
    SELECT DISTINCT ON (b.source_record_id) b.source_record_id, b.payload
    FROM sync_batch b
    WHERE b.reason IS NULL
    ORDER BY b.source_record_id, b.seq DESC
), fields AS (
    SELECT s.source_record_id,
           (s.payload ->> 'submitted_at')::timestamptz AS stated_at,
           s.payload -> 'consent' ->> 'marketing' AS marketing,
           nullif(s.payload -> 'consent' ->> 'parental', '') AS parental,
           s.payload -> 'consent' ->> 'parental_method' AS parental_method,
           s.payload -> 'consent' ->> 'guardian_name' AS guardian_name,
           coalesce(s.payload -> 'consent' ->> 'receipt_id', 'registration.submission:' || s.source_record_id)
               AS receipt_id,
           s.payload ->> 'form_version' AS form_version
    FROM submissions s
)
SELECT i.person_id,
       'fundraising'::text AS purpose,
       CASE f.marketing WHEN 'true' THEN 'given' WHEN 'false' THEN 'refused' END AS status,
       'registration.person:' || i.person_id || ':marketing' AS statement_key,
       f.stated_at,
       'consent'::text AS lawful_basis,
       p.jurisdiction,
       f.receipt_id,
       NULL::text AS parental_method,
       'self'::text AS given_by,
       jsonb_build_object('form', 'registration form', 'field', 'consent.marketing', 'value', f.marketing,
                          'submission_id', f.source_record_id, 'form_version', f.form_version) AS evidence
FROM fields f
JOIN incoming_people i ON i.source_record_id = f.source_record_id
JOIN core.person p ON p.person_id = i.person_id
WHERE f.marketing IS NOT NULL
UNION ALL
SELECT i.person_id,
       'course_messages',
       CASE f.parental WHEN 'pending' THEN 'parental_consent_pending'
                       WHEN 'verified' THEN 'parental_consent_verified' END,
       'registration.person:' || i.person_id || ':parental',
       f.stated_at,
       'consent',
       p.jurisdiction,
       f.receipt_id,
       coalesce(f.parental_method, 'registration form (field consent.parental)'),
       coalesce(f.guardian_name, 'parent or guardian'),
       jsonb_build_object('form', 'registration form', 'field', 'consent.parental', 'value', f.parental,
                          'submission_id', f.source_record_id, 'form_version', f.form_version)
FROM fields f
JOIN incoming_people i ON i.source_record_id = f.source_record_id
JOIN core.person p ON p.person_id = i.person_id
WHERE f.parental IS NOT NULL;
