-- Responses of these contacts' addresses that landed before the contact (or whose contact's consent changed):
-- linked to the person and to the contact's current consent statement. Idempotent: unchanged links are left.
UPDATE core.survey_response r
SET person_id = linked.person_id, consent_id = linked.consent_id, updated_at = now()
FROM (
    SELECT r2.survey_response_id, m.person_id,
           (SELECT c.consent_id FROM core.consent c
             WHERE c.person_id = m.person_id AND c.purpose = 'surveys'
               AND c.statement_key LIKE 'surveymonkey.contact:%%'
             ORDER BY c.stated_at DESC, c.recorded_at DESC LIMIT 1) AS consent_id
    FROM (SELECT DISTINCT encode(sha256(convert_to(lower(email), 'UTF8')), 'hex') AS email_sha256
          FROM incoming_people WHERE email IS NOT NULL) i
    JOIN core.person_source_id m0 ON m0.source = 'surveymonkey.contact_email' AND m0.source_record_id = i.email_sha256
    CROSS JOIN LATERAL (SELECT coalesce(p.merged_into, p.person_id) AS person_id
                        FROM core.person p WHERE p.person_id = m0.person_id) m
    JOIN core.survey_response r2 ON r2.source = 'surveymonkey' AND r2.respondent_ref = i.email_sha256
) linked
WHERE r.survey_response_id = linked.survey_response_id
  AND (r.person_id, r.consent_id) IS DISTINCT FROM (linked.person_id, linked.consent_id);
