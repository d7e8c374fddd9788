-- What each role may do to each object of the warehouse's own schemas, as the catalog states it (grants
-- held directly or through a role the role inherits). One row per object and role, the privileges as letters:
--   schema:   U usage, C create
--   relation: r select (all columns) or s (some columns only), a insert or i (some columns), w update or
--             u (some columns), d delete, D truncate, x references, t trigger
--   function: x execute (SECURITY DEFINER functions only: the others run with the caller's own rights)
-- Parameters: roles (text[]).
WITH own_schema AS (
    SELECT oid, nspname FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema'
), role AS (
    SELECT oid, rolname FROM pg_roles WHERE rolname = ANY (%(roles)s)
)
SELECT 'schema' AS kind, s.nspname AS object, r.rolname,
       concat(CASE WHEN has_schema_privilege(r.oid, s.oid, 'USAGE') THEN 'U' END,
              CASE WHEN has_schema_privilege(r.oid, s.oid, 'CREATE') THEN 'C' END) AS privileges
FROM own_schema s CROSS JOIN role r
UNION ALL
SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'view' ELSE 'table' END, c.oid::regclass::text,
       r.rolname,
       concat(CASE WHEN has_table_privilege(r.oid, c.oid, 'SELECT') THEN 'r'
                   WHEN has_any_column_privilege(r.oid, c.oid, 'SELECT') THEN 's' END,
              CASE WHEN has_table_privilege(r.oid, c.oid, 'INSERT') THEN 'a'
                   WHEN has_any_column_privilege(r.oid, c.oid, 'INSERT') THEN 'i' END,
              CASE WHEN has_table_privilege(r.oid, c.oid, 'UPDATE') THEN 'w'
                   WHEN has_any_column_privilege(r.oid, c.oid, 'UPDATE') THEN 'u' END,
              CASE WHEN has_table_privilege(r.oid, c.oid, 'DELETE') THEN 'd' END,
              CASE WHEN has_table_privilege(r.oid, c.oid, 'TRUNCATE') THEN 'D' END,
              CASE WHEN has_any_column_privilege(r.oid, c.oid, 'REFERENCES') THEN 'x' END,
              CASE WHEN has_table_privilege(r.oid, c.oid, 'TRIGGER') THEN 't' END)
FROM pg_class c JOIN own_schema s ON s.oid = c.relnamespace CROSS JOIN role r
WHERE c.relkind IN ('r', 'p', 'v', 'm')
UNION ALL
SELECT 'definer function', p.oid::regprocedure::text, r.rolname,
       CASE WHEN has_function_privilege(r.oid, p.oid, 'EXECUTE') THEN 'x' ELSE '' END
FROM pg_proc p JOIN own_schema s ON s.oid = p.pronamespace CROSS JOIN role r
WHERE p.prosecdef
ORDER BY 1, 2, 3;
