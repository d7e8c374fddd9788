-- Every KPI mart (mart.kpi_<name>_monthly, the KPI convention), discovered from the catalog at run time,
-- with the one-line label its COMMENT ON VIEW gives.
SELECT c.relname AS view_name, obj_description(c.oid, 'pg_class') AS label
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'mart' AND c.relkind IN ('v', 'm') AND c.relname LIKE 'kpi\_%\_monthly'
ORDER BY c.relname;
