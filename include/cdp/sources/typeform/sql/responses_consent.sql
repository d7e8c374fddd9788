-- Typeform responses: the learner named in the hidden field must already be in the warehouse (else the
-- response is kept in quarantine with the reason); the "may we contact you" answer is the respondent's
-- consent statement for surveys, one statement per response, into incoming_consent (then
-- _land_consent.sql).
UPDATE sync_batch b
SET reason = 'unknown learner: the moodle user in hidden.learner_id is not in the warehouse',
    reason_value = b.payload #>> '{hidden,learner_id}'
WHERE b.reason IS NULL
  AND NOT EXISTS (SELECT 1 FROM core.person_source_id m
                  WHERE m.source = 'moodle.user' AND m.source_record_id = b.payload #>> '{hidden,learner_id}');

CREATE TEMP TABLE incoming_consent ON COMMIT DROP AS
SELECT DISTINCT ON (b.source_record_id)
       coalesce(p.merged_into, p.person_id) AS person_id,
       'surveys'::text AS purpose,
       CASE a -> 'boolean' WHEN 'true'::jsonb THEN 'given' WHEN 'false'::jsonb THEN 'refused' END AS status,
       'typeform.response:' || b.source_record_id AS statement_key,
       (b.payload ->> 'submitted_at')::timestamptz AS stated_at,
       'consent'::text AS lawful_basis,
       p.jurisdiction,
       b.source_record_id AS receipt_id,
       NULL::text AS parental_method,
       'self'::text AS given_by,
       jsonb_build_object('form', 'typeform', 'field_ref', a #>> '{field,ref}', 'answer', a -> 'boolean',
                          'response_id', b.source_record_id, 'submitted_at', b.payload ->> 'submitted_at')
           AS evidence
FROM sync_batch b
CROSS JOIN LATERAL jsonb_array_elements(b.payload -> 'answers') a
JOIN core.person_source_id m ON m.source = 'moodle.user' AND m.source_record_id = b.payload #>> '{hidden,learner_id}'
JOIN core.person p ON p.person_id = m.person_id
WHERE b.reason IS NULL
  AND a #>> '{field,ref}' = 'may_contact'
ORDER BY b.source_record_id, b.seq DESC;
