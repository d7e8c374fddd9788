-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0006_legacy_audit_platforms.sql.

-- KPI marts (month, numerator, denominator, value; value NULL when the denominator is 0). Months are UTC
-- calendar months, from the first month with data to the last.
CREATE OR REPLACE VIEW mart.kpi_duplicate_rate_monthly AS
WITH runs AS (
    SELECT date_trunc('month', coalesce(finished_at, started_at) AT TIME ZONE 'UTC')::date AS month,
           coalesce((details ->> 'people_in_pairs')::bigint, 0) AS in_pairs, people_compared
    FROM ops.dedupe_run
    WHERE status = 'succeeded'
), months AS (
    SELECT generate_series(min(month), max(month), interval '1 month')::date AS month FROM runs
)
SELECT m.month,
       coalesce(sum(r.in_pairs), 0)::numeric AS numerator,
       coalesce(sum(r.people_compared), 0)::numeric AS denominator,
       CASE WHEN sum(r.people_compared) > 0 THEN sum(r.in_pairs)::numeric / sum(r.people_compared) END AS value
FROM months m
LEFT JOIN runs r ON r.month = m.month
GROUP BY m.month;
COMMENT ON VIEW mart.kpi_duplicate_rate_monthly IS
    'Duplicate rate (share, 0-1): over the month''s succeeded dedupe runs, people found in a match or possible match divided by people compared (ops.dedupe_run).';
REVOKE ALL ON mart.kpi_duplicate_rate_monthly FROM PUBLIC;
GRANT SELECT ON mart.kpi_duplicate_rate_monthly TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
