-- SurveyMonkey contacts, resolved to people (_resolve_people.sql): the consent the organisation keeps in a
-- contact custom field (the record's consent_field, from extra["consent_field"]) becomes the person's
-- statement for surveys, one series per contact, into incoming_consent (then _land_consent.sql).
-- The answers are cdp.sources.surveymonkey.specs.CONSENT_ANSWERS (validation quarantined anything else); an
-- empty field states nothing (emptied after a yes, _land_consent.sql reads it as a withdrawal). A contact
-- on SurveyMonkey's opt-out list (list_status 'optout': they asked for no more survey invitations) has
-- refused, whatever the field says. SurveyMonkey keeps no time on a contact or its fields, so a statement is
-- dated when first seen (a later change is dated when that is seen).
-- Each contact's email is also mapped, as its sha256 (key space surveymonkey.contact_email), to the person:
-- SurveyMonkey holds one contact per address, and responses name their recipient by address only.
INSERT INTO core.person_source_id (source, source_record_id, person_id)
SELECT DISTINCT ON (2) 'surveymonkey.contact_email', encode(sha256(convert_to(lower(email), 'UTF8')), 'hex'), person_id
FROM incoming_people
WHERE email IS NOT NULL
ORDER BY 2, source_record_id
ON CONFLICT (source, source_record_id) DO NOTHING;

CREATE TEMP TABLE incoming_consent ON COMMIT DROP AS
SELECT i.person_id,
       'surveys'::text AS purpose,
       CASE WHEN b.payload ->> 'list_status' = 'optout' THEN 'refused'
            ELSE CASE lower(trim(b.payload -> 'custom_fields' ->> (b.payload #>> '{consent_field,id}')))
                     WHEN 'yes' THEN 'given' WHEN 'y' THEN 'given' WHEN 'true' THEN 'given' WHEN '1' THEN 'given'
                     WHEN 'given' THEN 'given' WHEN 'granted' THEN 'given' WHEN 'opted in' THEN 'given'
                     WHEN 'opt-in' THEN 'given'
                     WHEN 'no' THEN 'refused' WHEN 'n' THEN 'refused' WHEN 'false' THEN 'refused'
                     WHEN '0' THEN 'refused' WHEN 'refused' THEN 'refused' WHEN 'declined' THEN 'refused'
                     WHEN 'opted out' THEN 'refused' WHEN 'opt-out' THEN 'refused'
                     WHEN 'withdrawn' THEN 'withdrawn'
                 END
       END AS status,
       'surveymonkey.contact:' || b.source_record_id AS statement_key,
       %(window_end)s::timestamptz AS stated_at,  -- SurveyMonkey dates no contact: when the sync saw it
       'consent'::text AS lawful_basis,
       p.jurisdiction,
       b.source_record_id AS receipt_id,
       NULL::text AS parental_method,
       'self'::text AS given_by,
       jsonb_build_object('form', 'surveymonkey', 'contact_id', b.source_record_id,
                          'custom_field', b.payload -> 'consent_field',
                          'answer', b.payload -> 'custom_fields' -> (b.payload #>> '{consent_field,id}'),
                          'list_status', b.payload -> 'list_status') AS evidence
FROM (SELECT DISTINCT ON (source_record_id) source_record_id, payload
      FROM sync_batch WHERE reason IS NULL ORDER BY source_record_id, seq DESC) b
JOIN incoming_people i ON i.source_record_id = b.source_record_id
JOIN core.person p ON p.person_id = i.person_id;
