-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0015_support_tickets.sql.

-- Erasure: when a person is erased (core.person.erased_at set, as privacy.erase_person does), their tickets
-- and every ticket written from their email lose the subject and the email's hash. Inside an erasure the
-- hash joins the erasure's needles, so the audit images of tickets that had no person id (whose images
-- have no subject) are blanked too. A trigger rather than a new erase_person: the function stays 0012's.
CREATE OR REPLACE FUNCTION core.erase_support_tickets() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_email text := nullif(coalesce(OLD.email_normalized, lower(trim(OLD.email))), '');
    v_hash text;
BEGIN
    IF v_email IS NOT NULL THEN
        v_hash := encode(sha256(convert_to(v_email, 'UTF8')), 'hex');
    END IF;
    UPDATE core.support_ticket t
    SET subject = NULL, requester_email_sha256 = NULL, updated_at = now()
    WHERE (t.person_id = NEW.person_id OR (v_hash IS NOT NULL AND t.requester_email_sha256 = v_hash))
      AND (t.subject IS NOT NULL OR t.requester_email_sha256 IS NOT NULL);
    -- Only into the needles table of an erasure running as this function's owner: a caller's own temporary
    -- table of that name (with a trigger of the caller's) would otherwise run the caller's code with the
    -- owner's rights (issue 15). The owner's table cannot carry a trigger the caller added.
    IF v_hash IS NOT NULL AND EXISTS (
        SELECT 1 FROM pg_catalog.pg_class c
        WHERE c.oid = pg_catalog.to_regclass('pg_temp.erase_needles')
          AND c.relowner = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)
    ) THEN
        INSERT INTO pg_temp.erase_needles (needle, strong) VALUES (v_hash, true);
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION core.erase_support_tickets() FROM PUBLIC;
