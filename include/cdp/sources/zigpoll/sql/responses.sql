-- Zigpoll responses → core.survey_response. The respondent is the participant (participantId); a
-- participant not synced yet leaves the person and consent NULL until participants_link.sql
-- fills them (nothing is dropped; unknown person and consent count as "no consent" downstream). The age
-- Zigpoll puts in the response metadata, when present and not negative, is age_reported; else NULL.
-- The participants and responses streams run side by side; they take turns here so that whichever commits
-- second sees the other's rows, and no response is left unlinked between them.
SELECT pg_advisory_xact_lock(hashtext('cdp.sync:zigpoll.respondents'));

INSERT INTO core.survey_response (person_id, survey_id, submitted_at, age_reported, answers, source,
                                  source_record_id, respondent_ref, consent_id)
SELECT DISTINCT ON (b.source_record_id)
       coalesce(p.merged_into, p.person_id),
       b.payload ->> 'pollId',
       (b.payload ->> 'createdAt')::timestamptz,
       CASE WHEN jsonb_typeof(b.payload #> '{metadata,age}') = 'number'
                 AND (b.payload #>> '{metadata,age}')::integer >= 0
            THEN (b.payload #>> '{metadata,age}')::integer END,
       jsonb_build_object('slideId', b.payload -> 'slideId', 'slideTitle', b.payload -> 'slideTitle',
                          'slideType', b.payload -> 'slideType', 'response', b.payload -> 'response',
                          'orderValue', b.payload -> 'orderValue', 'metadata', b.payload -> 'metadata'),
       'zigpoll', b.source_record_id, b.payload ->> 'participantId',
       (SELECT c.consent_id FROM core.consent c
         WHERE c.statement_key = 'zigpoll.participant:' || (b.payload ->> 'participantId')
           AND c.stated_at <= (b.payload ->> 'createdAt')::timestamptz
         ORDER BY c.stated_at DESC LIMIT 1)
FROM sync_batch b
LEFT JOIN core.person_source_id m ON m.source = 'zigpoll.participant' AND m.source_record_id = b.payload ->> 'participantId'
LEFT JOIN core.person p ON p.person_id = m.person_id
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

-- Earlier responses whose participant is known by now (a safety net behind participants_link.sql).
UPDATE core.survey_response r
SET person_id = coalesce(p.merged_into, p.person_id),
    consent_id = (SELECT c.consent_id FROM core.consent c
                   WHERE c.statement_key = 'zigpoll.participant:' || r.respondent_ref AND c.stated_at <= r.submitted_at
                   ORDER BY c.stated_at DESC LIMIT 1),
    updated_at = now()
FROM core.person_source_id m
JOIN core.person p ON p.person_id = m.person_id
WHERE r.source = 'zigpoll' AND r.person_id IS NULL
  AND m.source = 'zigpoll.participant' AND m.source_record_id = r.respondent_ref;
