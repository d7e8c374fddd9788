-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0005_access_consent.sql.

-- The partner organisation a session acts for. A partner login is bound to its organisation(s) in
-- core.partner_login; a session names the partner it acts for in the setting cdp.partner_organization_id.
-- The setting alone is not trusted (any session can set it): it counts only for an organisation bound to
-- the session's login.
CREATE OR REPLACE FUNCTION privacy.current_partner() RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pl.organization_id
    FROM core.partner_login pl
    WHERE pl.login_role = session_user
      AND pl.organization_id::text = lower(nullif(current_setting('cdp.partner_organization_id', true), ''))
$$;
REVOKE ALL ON FUNCTION privacy.current_partner() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.current_partner() TO cdp_loader, cdp_viewer, cdp_editor, cdp_admin, cdp_finance, cdp_partner;
