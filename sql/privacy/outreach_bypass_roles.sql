-- Roles that could build an outreach list without mart.outreach_eligible: they read consent statements
-- and contact details (email or phone) directly. Admin (who alone runs data subject requests) and the
-- loader (the pipeline, whose code tests/privacy scans) are the known exceptions, listed in allowed. The
-- owner of the definer functions (cdp_definer, revision 0017) reads both for the erasures, but nobody can act
-- as it (tests/privacy/test_definer_functions.py). Expected: no rows.
SELECT r.rolname AS role_name
FROM pg_roles r
WHERE left(r.rolname, 4) = 'cdp_'
  AND r.rolname NOT IN ('cdp_definer', 'cdp_login_admin')
  AND r.rolname <> ALL (%(allowed)s)
  AND has_any_column_privilege(r.oid, 'core.consent', 'SELECT')
  AND (has_column_privilege(r.oid, 'core.person', 'email', 'SELECT')
       OR has_column_privilege(r.oid, 'core.person', 'email_normalized', 'SELECT')
       OR has_column_privilege(r.oid, 'core.person', 'phone', 'SELECT')
       OR has_column_privilege(r.oid, 'core.person', 'phone_e164', 'SELECT'))
ORDER BY 1;
