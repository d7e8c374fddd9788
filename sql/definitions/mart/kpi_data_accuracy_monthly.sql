-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0006_legacy_audit_platforms.sql.

-- KPI marts (month, numerator, denominator, value; value NULL when the denominator is 0). Months are UTC
-- calendar months, from the first month with data to the last.
CREATE OR REPLACE VIEW mart.kpi_data_accuracy_monthly AS
WITH latest AS (
    SELECT DISTINCT ON (date_trunc('month', profiled_at AT TIME ZONE 'UTC'))
           date_trunc('month', profiled_at AT TIME ZONE 'UTC')::date AS month, records, records_with_errors
    FROM ops.legacy_profile
    WHERE stage = 'after'
    ORDER BY date_trunc('month', profiled_at AT TIME ZONE 'UTC'), profiled_at DESC
), months AS (
    SELECT generate_series(min(month), max(month), interval '1 month')::date AS month FROM latest
)
SELECT m.month,
       coalesce(l.records - l.records_with_errors, 0)::numeric AS numerator,
       coalesce(l.records, 0)::numeric AS denominator,
       CASE WHEN l.records > 0 THEN (l.records - l.records_with_errors)::numeric / l.records END AS value
FROM months m
LEFT JOIN latest l ON l.month = m.month;
COMMENT ON VIEW mart.kpi_data_accuracy_monthly IS
    'Data accuracy rate (share, 0-1): of the legacy records in the month''s latest audit, after the automatic cleanup, those without any error (migration_phase1_audit; target above 0.98).';
REVOKE ALL ON mart.kpi_data_accuracy_monthly FROM PUBLIC;
GRANT SELECT ON mart.kpi_data_accuracy_monthly TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
