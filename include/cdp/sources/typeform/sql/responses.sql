-- Typeform responses → core.survey_response, answers kept as jsonb keyed by the field's ref. The age
-- answer, when the payload has one, is age_reported; without it (or with a negative "unknown" age) the
-- age stays NULL, which downstream treats as a minor. consent_id is the response's own consent answer.
-- The survey id: a webhook delivery names its form_id; a polled response only its referer URL.
INSERT INTO core.survey_response (person_id, survey_id, submitted_at, age_reported, answers, source,
                                  source_record_id, respondent_ref, consent_id)
SELECT DISTINCT ON (b.source_record_id)
       coalesce(p.merged_into, p.person_id),
       coalesce(b.payload ->> 'form_id', substring(b.payload #>> '{metadata,referer}' FROM '/to/([A-Za-z0-9]+)'),
                'typeform'),
       (b.payload ->> 'submitted_at')::timestamptz,
       (SELECT CASE WHEN (a ->> 'number')::integer >= 0 THEN (a ->> 'number')::integer END
          FROM jsonb_array_elements(b.payload -> 'answers') a WHERE a #>> '{field,ref}' = 'age' LIMIT 1),
       coalesce((SELECT jsonb_object_agg(a #>> '{field,ref}', a -> (a ->> 'type'))
                   FROM jsonb_array_elements(b.payload -> 'answers') a), '{}'::jsonb),
       'typeform', b.source_record_id, b.payload #>> '{hidden,learner_id}',
       (SELECT c.consent_id FROM core.consent c
         WHERE c.statement_key = 'typeform.response:' || b.source_record_id
           AND c.stated_at <= (b.payload ->> 'submitted_at')::timestamptz
         ORDER BY c.stated_at DESC LIMIT 1)
FROM sync_batch b
JOIN core.person_source_id m ON m.source = 'moodle.user' AND m.source_record_id = b.payload #>> '{hidden,learner_id}'
JOIN core.person p ON p.person_id = m.person_id
WHERE b.reason IS NULL
ORDER BY b.source_record_id, b.seq DESC
ON CONFLICT (source, source_record_id) DO UPDATE
SET person_id = excluded.person_id, survey_id = excluded.survey_id, submitted_at = excluded.submitted_at,
    age_reported = excluded.age_reported, answers = excluded.answers, respondent_ref = excluded.respondent_ref,
    consent_id = excluded.consent_id, updated_at = now()
WHERE (core.survey_response.person_id, core.survey_response.survey_id, core.survey_response.submitted_at,
       core.survey_response.age_reported, core.survey_response.answers, core.survey_response.respondent_ref,
       core.survey_response.consent_id)
      IS DISTINCT FROM (excluded.person_id, excluded.survey_id, excluded.submitted_at, excluded.age_reported,
                        excluded.answers, excluded.respondent_ref, excluded.consent_id);
