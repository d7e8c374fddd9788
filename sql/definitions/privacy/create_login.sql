-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0005_access_consent.sql.

-- Logins. Every person or service logs in as its own user, a member of exactly one application role; a
-- partner login is also bound to its organisation. SECURITY DEFINER (creating roles needs CREATEROLE,
-- which no application role has); admin only; the new login can never be superuser or bypass RLS.
CREATE OR REPLACE FUNCTION privacy.create_login(p_login text, p_role text, p_password text, p_organization uuid DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_role NOT IN ('cdp_loader', 'cdp_viewer', 'cdp_editor', 'cdp_admin', 'cdp_finance', 'cdp_partner', 'cdp_outreach') THEN
        RAISE EXCEPTION 'unknown application role %', p_role USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (p_role = 'cdp_partner') <> (p_organization IS NOT NULL) THEN
        RAISE EXCEPTION 'a partner login needs an organisation, and only a partner login takes one'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_login !~ '^[a-z][a-z0-9_]{2,62}$' OR p_login LIKE 'cdp\_%' OR p_login LIKE 'pg\_%' THEN
        RAISE EXCEPTION 'login name % is not allowed', p_login USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(length(p_password), 0) < 12 THEN
        RAISE EXCEPTION 'the password must have at least 12 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE INHERIT IN ROLE %I',
                   p_login, p_password, p_role);
    IF p_organization IS NOT NULL THEN
        INSERT INTO core.partner_login (login_role, organization_id) VALUES (p_login, p_organization);
    END IF;
    PERFORM audit.record_event('create_login', 'role', p_login,
                               jsonb_build_object('role', p_role, 'organization_id', p_organization));
END
$$;
REVOKE ALL ON FUNCTION privacy.create_login(text, text, text, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.create_login(text, text, text, uuid) TO cdp_admin;
