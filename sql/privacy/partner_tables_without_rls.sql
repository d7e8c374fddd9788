-- Tables the partner role can read (or write) that hold people or organisations, but whose rows are not
-- guarded for partners: row-level security off, not forced, or no policy naming cdp_partner.
-- Expected: no rows. Checked by tests/privacy and usable as a health check.
SELECT n.nspname || '.' || c.relname AS table_name,
       c.relrowsecurity AS rls_enabled,
       c.relforcerowsecurity AS rls_forced,
       EXISTS (SELECT 1 FROM pg_policy p
               WHERE p.polrelid = c.oid
                 AND (SELECT oid FROM pg_roles WHERE rolname = 'cdp_partner') = ANY (p.polroles)) AS partner_policy
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname IN ('raw', 'core', 'mart', 'ops', 'audit')
  AND EXISTS (SELECT 1 FROM pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                AND a.attname IN ('person_id', 'organization_id', 'referrer_person_id', 'referred_person_id'))
  AND (has_table_privilege('cdp_partner', c.oid, 'SELECT')
       OR has_table_privilege('cdp_partner', c.oid, 'INSERT')
       OR has_table_privilege('cdp_partner', c.oid, 'UPDATE')
       OR has_table_privilege('cdp_partner', c.oid, 'DELETE')
       OR has_any_column_privilege('cdp_partner', c.oid, 'SELECT'))
  AND NOT (c.relrowsecurity AND c.relforcerowsecurity
           AND EXISTS (SELECT 1 FROM pg_policy p
                       WHERE p.polrelid = c.oid
                         AND (SELECT oid FROM pg_roles WHERE rolname = 'cdp_partner') = ANY (p.polroles)))
ORDER BY 1;
