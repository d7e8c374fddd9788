-- Powers no application role (cdp_*) nor any login that is a member of one may hold: superuser, bypassing
-- row-level security, creating roles or databases, owning a table, view or function in the warehouse
-- schemas (owners can switch triggers and row-level security off), or setting session_replication_role
-- (which silences triggers). Expected: no rows.
-- The definer functions' owners (cdp_definer, cdp_login_admin: revision 0017) are not application roles: no
-- one logs in as them or is their member, and tests/privacy/test_definer_functions.py checks what they hold.
WITH app AS (
    SELECT r.oid, r.rolname FROM pg_roles r
    WHERE r.rolname NOT IN ('cdp_definer', 'cdp_login_admin')
      AND (left(r.rolname, 4) = 'cdp_'
           OR EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                      WHERE m.member = r.oid AND left(g.rolname, 4) = 'cdp_'))
)
SELECT rolname, 'superuser' AS power FROM app JOIN pg_roles USING (oid, rolname) WHERE rolsuper
UNION ALL SELECT rolname, 'bypassrls' FROM app JOIN pg_roles USING (oid, rolname) WHERE rolbypassrls
UNION ALL SELECT rolname, 'createrole' FROM app JOIN pg_roles USING (oid, rolname) WHERE rolcreaterole
UNION ALL SELECT rolname, 'createdb' FROM app JOIN pg_roles USING (oid, rolname) WHERE rolcreatedb
UNION ALL
SELECT app.rolname, 'owns ' || n.nspname || '.' || c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN app ON app.oid = c.relowner
WHERE n.nspname IN ('raw', 'core', 'mart', 'ops', 'audit', 'privacy')
UNION ALL
SELECT app.rolname, 'owns function ' || n.nspname || '.' || p.proname
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN app ON app.oid = p.proowner
WHERE n.nspname IN ('raw', 'core', 'mart', 'ops', 'audit', 'privacy')
UNION ALL
SELECT app.rolname, 'owns schema ' || n.nspname
FROM pg_namespace n JOIN app ON app.oid = n.nspowner
WHERE n.nspname IN ('raw', 'core', 'mart', 'ops', 'audit', 'privacy')
UNION ALL
SELECT app.rolname, 'may set session_replication_role'
FROM app WHERE has_parameter_privilege(app.oid, 'session_replication_role', 'SET')
ORDER BY 1, 2;
