-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0015_support_tickets.sql.

-- Export: a person's tickets (by person id, or written from one of their emails), for `cdp privacy export`.
CREATE OR REPLACE FUNCTION privacy.support_tickets_of(p_person uuid) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH targets AS (
        SELECT privacy.person_and_merged(p_person) AS person_id
    ), hashes AS (
        SELECT encode(sha256(convert_to(p.email_normalized, 'UTF8')), 'hex') AS email_hash
        FROM core.person p WHERE p.person_id IN (SELECT person_id FROM targets) AND p.email_normalized IS NOT NULL
    )
    SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY t.opened_at, t.source_record_id), '[]')
    FROM core.support_ticket t
    WHERE t.person_id IN (SELECT person_id FROM targets)
       OR t.requester_email_sha256 IN (SELECT email_hash FROM hashes)
$$;
REVOKE ALL ON FUNCTION privacy.support_tickets_of(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.support_tickets_of(uuid) TO cdp_admin;
