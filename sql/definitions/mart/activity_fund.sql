-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Added by issue 19 (revision 0031 has the tables).

-- Every enrollment, completion and survey response with the fund(s) that paid for it then: its course's
-- program on the activity's day (UTC), and that program's funds on the same day, each with its share (the
-- shares of one activity add up to 1). A survey response's course is the respondent's latest enrollment at or
-- before the response (survey tools name no course). Activity with no course, no program or no funds that
-- day is one row with fund NULL and status 'unmapped' (unmapped_reason says which): shown, never guessed.
CREATE OR REPLACE VIEW mart.activity_fund AS
WITH activity AS (
    SELECT 'enrollment'::text AS activity, e.enrollment_id AS activity_id, e.person_id, e.course_id,
           e.enrolled_at AS activity_at
    FROM core.enrollment e
    UNION ALL
    SELECT 'completion', c.completion_id, c.person_id, c.course_id, c.completed_at
    FROM core.course_completion c
    UNION ALL
    SELECT 'survey_response', s.survey_response_id, s.person_id,
           (SELECT e.course_id FROM core.enrollment e
             WHERE e.person_id = s.person_id AND e.enrolled_at <= s.submitted_at
             ORDER BY e.enrolled_at DESC, e.enrollment_id LIMIT 1),
           s.submitted_at
    FROM core.survey_response s
    WHERE s.deleted_at IS NULL
), placed AS (
    SELECT a.*, (a.activity_at AT TIME ZONE 'UTC')::date AS activity_day, pc.program_id
    FROM activity a
    LEFT JOIN core.program_course pc
           ON pc.course_id = a.course_id
          AND pc.valid_from <= (a.activity_at AT TIME ZONE 'UTC')::date
          AND (pc.valid_to IS NULL OR (a.activity_at AT TIME ZONE 'UTC')::date < pc.valid_to)
)
SELECT p.activity, p.activity_id, p.person_id, p.course_id, p.activity_at, p.activity_day, p.program_id,
       pr.name AS program, pf.fund_id, f.name AS fund, f.source_record_id AS fund_source_record_id, pf.share,
       CASE WHEN pf.fund_id IS NULL THEN 'unmapped' ELSE 'attributed' END AS status,
       CASE WHEN p.course_id IS NULL THEN 'no course'
            WHEN p.program_id IS NULL THEN 'course in no program that day'
            WHEN pf.fund_id IS NULL THEN 'program paid by no fund that day' END AS unmapped_reason
FROM placed p
LEFT JOIN core.program pr ON pr.program_id = p.program_id
LEFT JOIN core.program_fund pf
       ON pf.program_id = p.program_id
      AND pf.valid_from <= p.activity_day
      AND (pf.valid_to IS NULL OR p.activity_day < pf.valid_to)
LEFT JOIN core.fund f ON f.fund_id = pf.fund_id;
COMMENT ON VIEW mart.activity_fund IS
    'Enrollments, completions and survey responses with the funds that paid for them that day, and shares.';
REVOKE ALL ON mart.activity_fund FROM PUBLIC;
GRANT SELECT ON mart.activity_fund TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
