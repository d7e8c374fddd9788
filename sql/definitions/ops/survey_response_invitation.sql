-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Added for revision 0030 (link-back of survey answers to their invitation; issue 18); the SurveyMonkey
-- recipient link since revision 0033 (the hand-over).

-- Which invitation a survey answer answers, by exact key: the invitation id the hand-over put in the tool's
-- own carrier for it (a Typeform hidden field, a SurveyMonkey custom variable, Zigpoll metadata, each named
-- invitation_id; or, for a SurveyMonkey email collector, the response's recipient_id that the hand-over recorded), read from the answer's payload as it was received (raw.records, its latest version), and
-- equal, as text, to an invitation of the same tool. No fuzzy matching: an answer without the key, or with a
-- key that names no invitation of that tool, links to nothing (invitation_id NULL, the key kept to see why).
-- Answers deleted at the source do not count.
CREATE OR REPLACE VIEW ops.survey_response_invitation AS
SELECT r.survey_response_id, r.source, r.survey_id, r.submitted_at, r.person_id AS respondent_person_id,
       k.invitation_key, i.invitation_id
FROM core.survey_response r
CROSS JOIN LATERAL (
    SELECT CASE r.source
               WHEN 'typeform' THEN x.payload #>> '{hidden,invitation_id}'
               -- A weblink's custom variable, else the email collector's recipient the hand-over recorded
               -- (revision 0033: the SurveyMonkey recipient id is the hand-over's tool_ref).
               WHEN 'surveymonkey' THEN coalesce(
                   x.payload #>> '{custom_variables,invitation_id}',
                   (SELECT h.invitation_id::text FROM ops.survey_handover h
                    WHERE h.tool = 'surveymonkey' AND h.outcome IN ('handed_over', 'sending')
                      AND h.tool_ref = x.payload ->> 'recipient_id'))
               WHEN 'zigpoll' THEN x.payload #>> '{metadata,invitation_id}'
           END AS invitation_key
    FROM raw.records x
    WHERE x.source = r.source AND x.stream = 'responses' AND x.source_record_id = r.source_record_id
    ORDER BY x.raw_id DESC
    LIMIT 1
) k
LEFT JOIN ops.survey_invitation i ON i.invitation_id::text = k.invitation_key AND i.tool = r.source
WHERE r.deleted_at IS NULL
  AND r.source IN ('typeform', 'surveymonkey', 'zigpoll');
COMMENT ON VIEW ops.survey_response_invitation IS
    'Survey answers and the invitation each answers, linked by the exact invitation key the answer carries '
    '(hidden field / custom variable / metadata invitation_id); invitation_id NULL when it carries none or an unknown one.';
REVOKE ALL ON ops.survey_response_invitation FROM PUBLIC;
GRANT SELECT ON ops.survey_response_invitation TO cdp_loader, cdp_viewer, cdp_editor, cdp_admin;
