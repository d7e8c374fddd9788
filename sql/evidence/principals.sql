-- Every login and every application role, from the catalog: its attributes and the application roles it is a
-- member of (directly or through another role), for the evidence pack's "who could do what".
-- Parameters: roles (text[], the application roles: cdp.privacy.role_matrix.application_roles).
WITH application AS (
    SELECT oid, rolname FROM pg_roles WHERE rolname = ANY (%(roles)s)
)
SELECT r.rolname AS name,
       r.rolcanlogin AS login,
       r.rolsuper AS superuser,
       r.rolbypassrls AS bypassrls,
       r.rolcreaterole AS createrole,
       r.rolinherit AS inherit,
       coalesce((SELECT array_agg(a.rolname::text ORDER BY a.rolname)
                 FROM application a
                 WHERE a.oid <> r.oid AND pg_has_role(r.oid, a.oid, 'MEMBER')), '{}') AS member_of
FROM pg_roles r
WHERE r.rolname !~ '^pg_' AND (r.rolcanlogin OR r.rolname = ANY (%(roles)s))
ORDER BY r.rolname;
