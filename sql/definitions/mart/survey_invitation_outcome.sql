-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Added for revision 0030 (survey marts; issue 18).

-- Every invitation and what came of it: answered or not (a linked answer, ops.survey_response_invitation), when
-- first, and the scores it gave (ops.survey_measure says which question is which; the latest answer to it
-- counts: Zigpoll sends one answer per question). Its course (the stratum) and cohort: the month the person
-- enrolled in that course. Person-level scores: the pipeline and admin only; staff read the aggregates.
CREATE OR REPLACE VIEW mart.survey_invitation_outcome AS
WITH measured AS (
    SELECT l.invitation_id, l.survey_response_id, l.submitted_at, m.measure,
           ops.survey_answer_number(CASE WHEN r.source = 'zigpoll'
                                         THEN CASE WHEN m.question IN (r.answers ->> 'slideId', r.answers ->> 'slideTitle')
                                                   THEN r.answers -> 'response' END
                                         ELSE r.answers -> m.question END) AS value
    FROM ops.survey_response_invitation l
    JOIN core.survey_response r ON r.survey_response_id = l.survey_response_id
    LEFT JOIN ops.survey_measure m ON m.source = l.source
    WHERE l.invitation_id IS NOT NULL
), per_invitation AS (
    SELECT invitation_id, count(DISTINCT survey_response_id) AS responses, min(submitted_at) AS first_response_at,
           (array_agg(value ORDER BY submitted_at DESC, survey_response_id)
                FILTER (WHERE measure = 'nps' AND value BETWEEN 0 AND 10))[1] AS nps_score,
           (array_agg(value ORDER BY submitted_at DESC, survey_response_id)
                FILTER (WHERE measure = 'satisfaction' AND value BETWEEN 1 AND 5))[1] AS satisfaction_score
    FROM measured
    GROUP BY invitation_id
)
SELECT i.invitation_id, i.person_id, i.survey_key, i.sample_week, i.tool, i.kind, i.phase, i.course_id,
       cohort.cohort, coalesce(o.responses, 0) > 0 AS responded, coalesce(o.responses, 0) AS responses,
       o.first_response_at, o.nps_score, o.satisfaction_score
FROM ops.survey_invitation i
LEFT JOIN per_invitation o ON o.invitation_id = i.invitation_id
LEFT JOIN LATERAL (
    SELECT to_char(e.enrolled_at AT TIME ZONE 'UTC', 'YYYY-MM') AS cohort
    FROM core.course_completion c
    JOIN core.enrollment e ON e.enrollment_id = c.enrollment_id
                           OR (e.person_id = c.person_id AND e.course_id = c.course_id)
    WHERE c.completion_id = i.completion_id
    ORDER BY (e.enrollment_id = c.enrollment_id) IS TRUE DESC, e.enrolled_at
    LIMIT 1
) cohort ON true;
COMMENT ON VIEW mart.survey_invitation_outcome IS
    'Each survey invitation: its course and cohort (enrolment month), whether and when it was answered (exact key), '
    'and the NPS (0-10) and satisfaction (1-5) it gave.';
REVOKE ALL ON mart.survey_invitation_outcome FROM PUBLIC;
GRANT SELECT ON mart.survey_invitation_outcome TO cdp_loader, cdp_admin;
