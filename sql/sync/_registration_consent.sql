-- A registration form's two consent statements, into incoming_consent (then _land_consent.sql), from temp
-- table registration_answers: one row per form record of a resolved person (person_id, stated_at,
-- receipt_id) with, per question, its status (NULL when the answer states nothing), the key of the
-- statement series it belongs to, and its evidence; plus who gave the parental consent and how.
--   * marketing ("I agree to receive news by email"): given or refused (refused after given is a
--     withdrawal), purpose fundraising, given by the person;
--   * parental: pending / verified parental consent for the course messages the registration covers; an
--     empty answer states nothing, unless consent was recorded before (then it was withdrawn).
CREATE TEMP TABLE incoming_consent ON COMMIT DROP AS
SELECT a.person_id,
       'fundraising'::text AS purpose,
       a.marketing_status AS status,
       a.marketing_key AS statement_key,
       a.stated_at,
       'consent'::text AS lawful_basis,
       p.jurisdiction,
       a.receipt_id,
       NULL::text AS parental_method,
       'self'::text AS given_by,
       a.marketing_evidence AS evidence
FROM registration_answers a
JOIN core.person p ON p.person_id = a.person_id
WHERE a.marketing_answered
UNION ALL
SELECT a.person_id,
       'course_messages',
       a.parental_status,
       a.parental_key,
       a.stated_at,
       'consent',
       p.jurisdiction,
       a.receipt_id,
       a.parental_method,
       a.parental_given_by,
       a.parental_evidence
FROM registration_answers a
JOIN core.person p ON p.person_id = a.person_id
WHERE a.parental_answered;
