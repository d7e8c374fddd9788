-- The application roles, from the catalog: every role (not a superuser, not PostgreSQL's own pg_*) that is
-- named cdp_*, holds a grant on a schema, relation, column or function of the warehouse's own schemas, or
-- owns one of them. A login made by privacy.create_login holds no grant of its own (it inherits one role's)
-- and is not listed, nor is a per-process login (cdp_pipeline, cdp_operator, ...: members of one role). Used by the role × action matrix (tests/privacy/test_role_matrix.py, docs/role_matrix.md).
WITH own_schema AS (
    SELECT oid, nspowner, nspacl FROM pg_namespace
    WHERE nspname !~ '^pg_' AND nspname <> 'information_schema'
), holder AS (
    SELECT (aclexplode(nspacl)).grantee AS role_oid FROM own_schema
    UNION SELECT nspowner FROM own_schema
    UNION SELECT (aclexplode(c.relacl)).grantee FROM pg_class c JOIN own_schema s ON s.oid = c.relnamespace
    UNION SELECT c.relowner FROM pg_class c JOIN own_schema s ON s.oid = c.relnamespace
    UNION SELECT (aclexplode(a.attacl)).grantee
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN own_schema s ON s.oid = c.relnamespace
          WHERE a.attacl IS NOT NULL
    UNION SELECT (aclexplode(p.proacl)).grantee FROM pg_proc p JOIN own_schema s ON s.oid = p.pronamespace
    UNION SELECT p.proowner FROM pg_proc p JOIN own_schema s ON s.oid = p.pronamespace
)
SELECT r.rolname
FROM pg_roles r
WHERE NOT r.rolsuper AND r.rolname !~ '^pg_'
  AND ((left(r.rolname, 4) = 'cdp_' AND NOT r.rolcanlogin) OR r.oid IN (SELECT role_oid FROM holder))
ORDER BY r.rolname;
