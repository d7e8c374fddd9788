-- Columns of audited tables whose name says they hold personal data, but which are missing from
-- audit.personal_column: their values would enter the hash chain in clear, where no erasure can reach
-- them. Expected: no rows. Organisation, fund (an NPSP General Accounting Unit) and program names are not
-- personal (listed below).
SELECT n.nspname || '.' || c.relname AS table_name, a.attname::text AS column_name
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p')
  AND EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'audit_update')
  AND a.attname ~* '(name|email|phone|birth|street|address|locality|postcode|postal|answers|given_by|evidence)'
  AND (n.nspname || '.' || c.relname, a.attname::text) NOT IN (
      ('core.organization', 'name'), ('core.partner_login', 'login_role'), ('core.fund', 'name'),
      ('core.program', 'name'))
  AND NOT EXISTS (SELECT 1 FROM audit.personal_column pc
                  WHERE pc.table_name = n.nspname || '.' || c.relname AND pc.column_name = a.attname)
ORDER BY 1, 2;
