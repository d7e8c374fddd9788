-- Responses that arrived before their participant (the two streams sync independently) are linked now:
-- the participant's person, and the participant's consent statement in force when they answered.
UPDATE core.survey_response r
SET person_id = linked.person_id, consent_id = linked.consent_id, updated_at = now()
FROM (
    SELECT r2.survey_response_id, i.person_id,
           (SELECT c.consent_id FROM core.consent c
             WHERE c.statement_key = 'zigpoll.participant:' || i.source_record_id AND c.stated_at <= r2.submitted_at
             ORDER BY c.stated_at DESC LIMIT 1) AS consent_id
    FROM incoming_participants i
    JOIN core.survey_response r2 ON r2.source = 'zigpoll' AND r2.respondent_ref = i.source_record_id
) linked
WHERE r.survey_response_id = linked.survey_response_id
  AND (r.person_id, r.consent_id) IS DISTINCT FROM (linked.person_id, linked.consent_id);
