-- 0015 support tickets (issue 7: "support tickets linked to referrals where the data exists").
-- The support desk (Zendesk) feeds core.support_ticket through the sync (sql/sync/zendesk__tickets.sql);
-- the empty placeholder KPI of 0008 becomes a real one over it.
--
-- History: the views and functions below are as this revision made them. Today's definition of each is
-- in sql/definitions/, which `cdp migrate` re-applies after the revisions (sql/README.md).

-- One row per Zendesk ticket. The requester is a person when the sync's exact keys find exactly one
-- (the Zendesk user already mapped in core.person_source_id as 'zendesk.user', else normalised email and
-- full name, in either order, held by exactly one known person); otherwise person_id stays NULL and only a one-way hash of
-- the normalised email is kept, never the email itself. No person is created for a ticket.
CREATE TABLE core.support_ticket (
    support_ticket_id      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    person_id              uuid REFERENCES core.person,
    requester_source_id    text,                -- the Zendesk user id of the requester
    requester_email_sha256 text,                -- sha256(lower(trim(email))) in hex; NULL once erased
    subject                text,                -- free text typed by the requester: personal
    status                 text NOT NULL CHECK (status IN ('new', 'open', 'pending', 'hold', 'solved', 'closed',
                                                           'deleted')),
    tags                   text[] NOT NULL DEFAULT '{}',
    referral_ref           text,                -- what the account's "Referral" custom field names
    referral_id            uuid REFERENCES core.referral,  -- that referral, once it is in the warehouse
    about_referral         boolean NOT NULL,    -- tag `referral`, or the Referral field filled in
    opened_at              timestamptz NOT NULL,  -- the ticket's created_at at Zendesk
    changed_at             timestamptz NOT NULL,  -- its updated_at at Zendesk
    source                 text NOT NULL,
    source_record_id       text NOT NULL,
    updated_at             timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_record_id)
);
CREATE INDEX support_ticket_person ON core.support_ticket (person_id);
CREATE INDEX support_ticket_requester_email ON core.support_ticket (requester_email_sha256);
CREATE INDEX support_ticket_opened ON core.support_ticket (opened_at);
COMMENT ON TABLE core.support_ticket IS
    'Support-desk tickets (Zendesk), with the requester as a person id when exact keys find one.';

SELECT audit.track_changes('core.support_ticket'::regclass, 'support_ticket_id');

INSERT INTO audit.personal_column (table_name, column_name) VALUES
    ('core.support_ticket', 'requester_email_sha256'), ('core.support_ticket', 'subject');

REVOKE ALL ON core.support_ticket FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON core.support_ticket TO cdp_loader, cdp_admin;
-- Reporting roles see the ticket without what the requester typed or the email's hash.
GRANT SELECT (support_ticket_id, person_id, requester_source_id, status, tags, referral_ref, referral_id,
              about_referral, opened_at, changed_at, source, source_record_id, updated_at)
    ON core.support_ticket TO cdp_viewer, cdp_editor, cdp_finance;

-- ---------------------------------------------------------------------------------------------------------
-- Erasure: when a person is erased (core.person.erased_at set, as privacy.erase_person does), their tickets
-- and every ticket written from their email lose the subject and the email's hash. Inside an erasure the
-- hash joins the erasure's needles, so the audit images of tickets that had no person id (whose images
-- have no subject) are blanked too. A trigger rather than a new erase_person: the function stays 0012's.
-- ---------------------------------------------------------------------------------------------------------
CREATE FUNCTION core.erase_support_tickets() RETURNS trigger
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
    IF v_hash IS NOT NULL AND to_regclass('pg_temp.erase_needles') IS NOT NULL THEN
        INSERT INTO erase_needles (needle, strong) VALUES (v_hash, true);
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION core.erase_support_tickets() FROM PUBLIC;

CREATE TRIGGER erase_support_tickets
    AFTER UPDATE OF erased_at ON core.person
    FOR EACH ROW WHEN (OLD.erased_at IS NULL AND NEW.erased_at IS NOT NULL)
    EXECUTE FUNCTION core.erase_support_tickets();

-- Export: a person's tickets (by person id, or written from one of their emails), for `cdp privacy export`.
CREATE FUNCTION privacy.support_tickets_of(p_person uuid) RETURNS jsonb
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

-- ---------------------------------------------------------------------------------------------------------
-- The KPI, replacing 0008's empty placeholder (same name and columns, so its grants stay).
-- ---------------------------------------------------------------------------------------------------------
CREATE OR REPLACE VIEW mart.kpi_referral_support_tickets_monthly AS
SELECT date_trunc('month', t.opened_at AT TIME ZONE 'UTC')::date AS month,
       (count(*) FILTER (WHERE t.about_referral))::numeric AS numerator,
       count(*)::numeric AS denominator,
       CASE WHEN count(*) > 0 THEN (count(*) FILTER (WHERE t.about_referral))::numeric / count(*) END AS value
FROM core.support_ticket t
WHERE t.source = 'zendesk' AND t.status <> 'deleted'
GROUP BY 1;
COMMENT ON VIEW mart.kpi_referral_support_tickets_monthly IS
    'Support tickets linked to referrals (ratio): tickets about a referral (tag referral or the Referral field filled in) ÷ all support tickets opened that month (Zendesk, deleted tickets left out); numerator = the count of referral tickets.';
REVOKE ALL ON mart.kpi_referral_support_tickets_monthly FROM PUBLIC;
GRANT SELECT ON mart.kpi_referral_support_tickets_monthly TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
