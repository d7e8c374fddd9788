-- SurveyMonkey responses → core.survey_response. Answers are made readable from the side-loaded
-- survey_questions (cdp.sources.surveymonkey): {question heading: [answer, ...]}, each answer the choice's
-- (or the other option's) text, after its matrix row and column texts, then any typed text; an id the
-- survey details did not name is kept as the id. submitted_at is date_modified: the time the answers stand
-- as. SurveyMonkey asks no age (age_reported stays NULL: unknown, which downstream treats as a minor).
-- The respondent is the email collector's recipient, named by the sha256 of its address (respondent_ref);
-- the person is the SurveyMonkey contact with that address (contacts_consent.sql), and consent_id that
-- contact's current consent statement. A web link response, or one whose contact is not synced yet, keeps
-- NULL person and consent (unknown counts as "no consent" downstream) until contacts_link.sql links it.
SELECT pg_advisory_xact_lock(hashtext('cdp.sync:surveymonkey.respondents'));

CREATE TEMP TABLE incoming_responses ON COMMIT DROP AS
SELECT DISTINCT ON (b.source_record_id)
       b.source_record_id, b.payload,
       encode(sha256(convert_to(lower(trim(nullif(b.payload #>> '{recipient,email}', ''))), 'UTF8')), 'hex')
           AS email_sha256,
       CASE WHEN b.payload ->> 'date_modified' ~ '([+-][0-9]{2}:?[0-9]{2}|Z)$'
            THEN (b.payload ->> 'date_modified')::timestamptz
            ELSE (b.payload ->> 'date_modified')::timestamp AT TIME ZONE 'UTC' END AS submitted_at
FROM sync_batch b
WHERE b.reason IS NULL
ORDER BY b.source_record_id, b.seq DESC;

INSERT INTO core.survey_response (person_id, survey_id, submitted_at, age_reported, answers, source,
                                  source_record_id, respondent_ref, consent_id)
SELECT person.person_id,
       i.payload ->> 'survey_id',
       i.submitted_at,
       NULL::integer,
       (SELECT coalesce(jsonb_object_agg(heading, texts), '{}'::jsonb)
        FROM (SELECT coalesce(q.question ->> 'heading', qa ->> 'id') AS heading,
                     jsonb_agg(concat_ws(': ',
                                         coalesce(q.question -> 'rows' ->> (a.answer ->> 'row_id'), a.answer ->> 'row_id'),
                                         coalesce(q.question -> 'cols' ->> (a.answer ->> 'col_id'), a.answer ->> 'col_id'),
                                         coalesce(q.question -> 'choices' ->> (a.answer ->> 'choice_id'),
                                                  q.question -> 'other' ->> (a.answer ->> 'other_id'),
                                                  a.answer ->> 'choice_id', a.answer ->> 'other_id'),
                                         a.answer ->> 'text')
                               ORDER BY pg.n, qa_n, a.n) AS texts
              FROM jsonb_array_elements(i.payload -> 'pages') WITH ORDINALITY pg(page, n)
              CROSS JOIN LATERAL jsonb_array_elements(pg.page -> 'questions') WITH ORDINALITY qs(qa, qa_n)
              CROSS JOIN LATERAL (SELECT i.payload -> 'survey_questions' -> (qs.qa ->> 'id') AS question) q
              CROSS JOIN LATERAL jsonb_array_elements(qs.qa -> 'answers') WITH ORDINALITY a(answer, n)
              GROUP BY 1) answered),
       'surveymonkey', i.source_record_id, i.email_sha256,
       (SELECT c.consent_id FROM core.consent c
         WHERE c.person_id = person.person_id AND c.purpose = 'surveys'
           AND c.statement_key LIKE 'surveymonkey.contact:%%'
         ORDER BY c.stated_at DESC, c.recorded_at DESC LIMIT 1)
FROM incoming_responses i
LEFT JOIN LATERAL (
    SELECT coalesce(p.merged_into, p.person_id) AS person_id
    FROM core.person_source_id m
    JOIN core.person p ON p.person_id = m.person_id
    WHERE m.source = 'surveymonkey.contact_email' AND m.source_record_id = i.email_sha256
) person ON true
ON CONFLICT (source, source_record_id) DO UPDATE
SET person_id = excluded.person_id, survey_id = excluded.survey_id, submitted_at = excluded.submitted_at,
    age_reported = excluded.age_reported, answers = excluded.answers, respondent_ref = excluded.respondent_ref,
    consent_id = excluded.consent_id, updated_at = now()
WHERE (core.survey_response.person_id, core.survey_response.survey_id, core.survey_response.submitted_at,
       core.survey_response.age_reported, core.survey_response.answers, core.survey_response.respondent_ref,
       core.survey_response.consent_id)
      IS DISTINCT FROM (excluded.person_id, excluded.survey_id, excluded.submitted_at, excluded.age_reported,
                        excluded.answers, excluded.respondent_ref, excluded.consent_id);
