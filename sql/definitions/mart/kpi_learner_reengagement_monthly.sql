-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0006_legacy_audit_platforms.sql.

-- KPI marts (month, numerator, denominator, value; value NULL when the denominator is 0). Months are UTC
-- calendar months, from the first month with data to the last.
CREATE OR REPLACE VIEW mart.kpi_learner_reengagement_monthly AS
WITH active AS (
    SELECT DISTINCT e.person_id, date_trunc('month', e.enrolled_at AT TIME ZONE 'UTC')::date AS month
    FROM core.enrollment e
), flagged AS (
    SELECT a.month,
           (SELECT max(e.enrolled_at AT TIME ZONE 'UTC') FROM core.enrollment e
            WHERE e.person_id = a.person_id AND e.enrolled_at AT TIME ZONE 'UTC' < a.month) AS previous
    FROM active a
), months AS (
    SELECT generate_series(min(month), max(month), interval '1 month')::date AS month FROM active
)
SELECT m.month,
       count(f.month) FILTER (WHERE f.previous < m.month - interval '90 days')::numeric AS numerator,
       count(f.month)::numeric AS denominator,
       CASE WHEN count(f.month) > 0
            THEN count(f.month) FILTER (WHERE f.previous < m.month - interval '90 days')::numeric / count(f.month)
       END AS value
FROM months m
LEFT JOIN flagged f ON f.month = m.month
GROUP BY m.month;
COMMENT ON VIEW mart.kpi_learner_reengagement_monthly IS
    'Learner re-engagement (share, 0-1): of the learners who started an enrollment in the month, those who had enrolled before but not in the 90 days before the month began (their previous enrollment started more than 90 days before the 1st).';
REVOKE ALL ON mart.kpi_learner_reengagement_monthly FROM PUBLIC;
GRANT SELECT ON mart.kpi_learner_reengagement_monthly TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
