-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Added by issue 15 (no revision defines it).

-- A partner registers a learner in its own organisation (the session's privacy.current_partner()). Partners
-- have no INSERT on core.organization_membership (revision 0018): with it a partner inserted a membership of
-- its own organisation for another organisation's learner, and row-level security then showed that
-- learner's name. Here a person who is a member of another organisation, merged, erased or unknown is
-- refused with one and the same message, so the function does not tell a partner which person ids exist.
-- A person already in the partner's organisation in that cohort is left as is.
CREATE OR REPLACE FUNCTION privacy.register_member(p_person uuid, p_cohort text DEFAULT '', p_since date DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    partner uuid := privacy.current_partner();
BEGIN
    IF partner IS NULL THEN
        RAISE EXCEPTION 'this session acts for no partner organisation bound to its login'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'set cdp.partner_organization_id to the organisation the login is bound to';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM core.person p
                   WHERE p.person_id = p_person AND p.merged_into IS NULL AND p.erased_at IS NULL)
       OR EXISTS (SELECT 1 FROM core.organization_membership m
                  WHERE m.person_id = p_person AND m.organization_id <> partner)
    THEN
        RAISE EXCEPTION 'person % cannot be registered by this organisation', p_person
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'a learner of another organisation is registered by that organisation, or by an admin';
    END IF;
    INSERT INTO core.organization_membership (organization_id, person_id, role, cohort, since)
    VALUES (partner, p_person, 'learner', coalesce(p_cohort, ''), p_since)
    ON CONFLICT DO NOTHING;
END
$$;
REVOKE ALL ON FUNCTION privacy.register_member(uuid, text, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.register_member(uuid, text, date) TO cdp_partner;
-- Owned by the definer role like every SECURITY DEFINER function (revision 0017; its INSERT on the
-- membership table is granted by revision 0018).
ALTER FUNCTION privacy.register_member(uuid, text, date) OWNER TO cdp_definer;
