-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0006_legacy_audit_platforms.sql.

-- KPI marts (month, numerator, denominator, value; value NULL when the denominator is 0). Months are UTC
-- calendar months, from the first month with data to the last.
CREATE OR REPLACE VIEW mart.kpi_course_completion_monthly AS
WITH cohort AS (
    SELECT date_trunc('month', e.enrolled_at AT TIME ZONE 'UTC')::date AS month,
           EXISTS (SELECT 1 FROM core.course_completion k
                   WHERE k.person_id = e.person_id AND k.course_id = e.course_id
                     AND k.completed_at >= e.enrolled_at) AS completed
    FROM core.enrollment e
), months AS (
    SELECT generate_series(min(month), max(month), interval '1 month')::date AS month FROM cohort
)
SELECT m.month,
       count(c.month) FILTER (WHERE c.completed)::numeric AS numerator,
       count(c.month)::numeric AS denominator,
       CASE WHEN count(c.month) > 0
            THEN count(c.month) FILTER (WHERE c.completed)::numeric / count(c.month) END AS value
FROM months m
LEFT JOIN cohort c ON c.month = m.month
GROUP BY m.month;
COMMENT ON VIEW mart.kpi_course_completion_monthly IS
    'Course completion rate (share, 0-1): of the enrollments started in the month, those whose learner has a completion of that course dated on or after the enrollment started.';
REVOKE ALL ON mart.kpi_course_completion_monthly FROM PUBLIC;
GRANT SELECT ON mart.kpi_course_completion_monthly TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
