-- Zigpoll participants: who answered, and the consent metadata Zigpoll keeps apart from the responses.
-- A participant points to the learner through metadata.moodle_user_id (an exact key); one whose learner
-- is not in the warehouse is kept in quarantine with the reason. Known participants are mapped to their
-- person (core.person_source_id, key space zigpoll.participant) and their consent goes to
-- incoming_consent (then _land_consent.sql): granted → given, declined → refused, withdrawn → withdrawn,
-- for the purpose surveys (Zigpoll's research and follow-up purposes are kept in the evidence).
-- The participants and responses streams run side by side; they take turns here so that whichever commits
-- second sees the other's rows, and no response is left unlinked between them.
SELECT pg_advisory_xact_lock(hashtext('cdp.sync:zigpoll.respondents'));

UPDATE sync_batch b
SET reason = 'unknown learner: the moodle user in metadata.moodle_user_id is not in the warehouse',
    reason_value = b.payload #>> '{metadata,moodle_user_id}'
WHERE b.reason IS NULL
  AND NOT EXISTS (SELECT 1 FROM core.person_source_id m
                  WHERE m.source = 'moodle.user' AND m.source_record_id = b.payload #>> '{metadata,moodle_user_id}');

CREATE TEMP TABLE incoming_participants ON COMMIT DROP AS
SELECT DISTINCT ON (b.source_record_id)
       b.source_record_id, b.payload, coalesce(p.merged_into, p.person_id) AS person_id, p.jurisdiction
FROM sync_batch b
JOIN core.person_source_id m ON m.source = 'moodle.user' AND m.source_record_id = b.payload #>> '{metadata,moodle_user_id}'
JOIN core.person p ON p.person_id = m.person_id
WHERE b.reason IS NULL
ORDER BY b.source_record_id, b.seq DESC;
ANALYZE incoming_participants;

INSERT INTO core.person_source_id (source, source_record_id, person_id)
SELECT 'zigpoll.participant', source_record_id, person_id
FROM incoming_participants
ON CONFLICT (source, source_record_id) DO NOTHING;

CREATE TEMP TABLE incoming_consent ON COMMIT DROP AS
SELECT person_id,
       'surveys'::text AS purpose,
       CASE payload #>> '{consent,status}' WHEN 'granted' THEN 'given' WHEN 'declined' THEN 'refused'
                                           WHEN 'withdrawn' THEN 'withdrawn' END AS status,
       'zigpoll.participant:' || source_record_id AS statement_key,
       coalesce(payload #>> '{consent,collectedAt}', payload ->> 'createdAt')::timestamptz AS stated_at,
       'consent'::text AS lawful_basis,
       jurisdiction,
       source_record_id || coalesce('/' || (payload #>> '{consent,policyVersion}'), '') AS receipt_id,
       NULL::text AS parental_method,
       'self'::text AS given_by,
       (payload -> 'consent') || jsonb_build_object('participant_id', source_record_id) AS evidence
FROM incoming_participants;
