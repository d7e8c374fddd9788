-- The registration form's consent statements (after _resolve_people.sql, so every valid submission has a
-- person id in incoming_people) into registration_answers (then _registration_consent.sql and
-- _land_consent.sql), by the same rules as the Moodle registration consent (cdp/sources/moodle/sql/users_consent.sql):
--   * consent.marketing: true given, false refused; absent states nothing;
--   * consent.parental: pending / verified; "none" or empty states nothing (a withdrawal when consent was
--     recorded before).
-- A series is the person's answer to one question of the form, whichever submission gave it (as a Moodle
-- user's profile field is): a parent re-submitting with "none" withdraws what an earlier submission gave.
-- stated_at is submitted_at; the submission id is in the evidence.
CREATE TEMP TABLE registration_answers ON COMMIT DROP AS
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
       f.stated_at,
       f.receipt_id,
       f.marketing IS NOT NULL AS marketing_answered,
       CASE f.marketing WHEN 'true' THEN 'given' WHEN 'false' THEN 'refused' END AS marketing_status,
       'registration.person:' || i.person_id || ':marketing' AS marketing_key,
       jsonb_build_object('form', 'registration form', 'field', 'consent.marketing', 'value', f.marketing,
                          'submission_id', f.source_record_id, 'form_version', f.form_version) AS marketing_evidence,
       f.parental IS NOT NULL AS parental_answered,
       CASE f.parental WHEN 'pending' THEN 'parental_consent_pending'
                       WHEN 'verified' THEN 'parental_consent_verified' END AS parental_status,
       'registration.person:' || i.person_id || ':parental' AS parental_key,
       coalesce(f.parental_method, 'registration form (field consent.parental)') AS parental_method,
       coalesce(f.guardian_name, 'parent or guardian') AS parental_given_by,
       jsonb_build_object('form', 'registration form', 'field', 'consent.parental', 'value', f.parental,
                          'submission_id', f.source_record_id, 'form_version', f.form_version) AS parental_evidence
FROM fields f
JOIN incoming_people i ON i.source_record_id = f.source_record_id;
