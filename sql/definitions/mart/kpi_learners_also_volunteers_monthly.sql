-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0006_legacy_audit_platforms.sql.

-- KPI marts (month, numerator, denominator, value; value NULL when the denominator is 0). Months are UTC
-- calendar months, from the first month with data to the last.
-- Cumulative: a learner is anyone with an enrollment started before the month ended; a donor anyone with a
-- gift made (succeeded, refunded or partly refunded) before then; a volunteer anyone registered with the
-- volunteer platform before then. People follow merges to their survivor.
CREATE OR REPLACE VIEW mart.kpi_learners_also_volunteers_monthly AS
WITH learner AS (
    SELECT coalesce(p.merged_into, p.person_id) AS person_id, min(e.enrolled_at) AS since
    FROM core.enrollment e JOIN core.person p ON p.person_id = e.person_id
    GROUP BY 1
), volunteer AS (
    SELECT coalesce(p.merged_into, p.person_id) AS person_id, min(v.registered_at) AS since
    FROM core.volunteer v JOIN core.person p ON p.person_id = v.person_id
    GROUP BY 1
), months AS (
    SELECT generate_series(date_trunc('month', min(since) AT TIME ZONE 'UTC'),
                           date_trunc('month', now() AT TIME ZONE 'UTC'), interval '1 month')::date AS month
    FROM learner
)
SELECT m.month,
       count(l.person_id) FILTER (WHERE v.since < (m.month + interval '1 month') AT TIME ZONE 'UTC')::numeric AS numerator,
       count(l.person_id)::numeric AS denominator,
       CASE WHEN count(l.person_id) > 0
            THEN count(l.person_id) FILTER (WHERE v.since < (m.month + interval '1 month') AT TIME ZONE 'UTC')::numeric
                 / count(l.person_id) END AS value
FROM months m
LEFT JOIN learner l ON l.since < (m.month + interval '1 month') AT TIME ZONE 'UTC'
LEFT JOIN volunteer v ON v.person_id = l.person_id
GROUP BY m.month;
COMMENT ON VIEW mart.kpi_learners_also_volunteers_monthly IS
    'Learners who are also volunteers (share, 0-1, cumulative): of everyone who had started an enrollment by the end of the month, those registered with the volunteer platform by then.';
REVOKE ALL ON mart.kpi_learners_also_volunteers_monthly FROM PUBLIC;
GRANT SELECT ON mart.kpi_learners_also_volunteers_monthly TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
