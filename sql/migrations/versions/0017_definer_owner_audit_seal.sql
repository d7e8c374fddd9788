-- 0017 definer owner, audit writes and the chain's seal (issue 15, items 1, 5 and 6).
--
-- 1. Every SECURITY DEFINER function is owned by cdp_definer, a NOLOGIN role that is not superuser, does not
--    bypass row-level security, owns no table and holds only the rights below (what the functions do: the
--    erasures' updates, the correction path, the identity decision, the audit trail's writes). Until now they
--    ran as the migration's superuser, so any flaw in one of them (0015's unqualified table name) handed
--    the caller the whole cluster. privacy.create_login needs CREATEROLE, which cdp_definer must not have:
--    it is owned by cdp_login_admin, which can create roles and grant only the seven application roles
--    (ADMIN OPTION without INHERIT or SET, so it holds none of their rights) and insert partner bindings.
--
-- 2. Audit events are written only by the warehouse: the application roles lose INSERT on audit.audit_events
--    and audit.personal_image. The change triggers (audit.record_change) and audit.record_event become
--    SECURITY DEFINER functions of cdp_definer (sql/definitions/audit/), which record the real login
--    (session_user) and the role it acts as beside the actor a session claims (cdp.actor, cdp.dag_id).
--
-- 3. The chain's lock is no longer held from an event's insert to its writer's commit (which let any role
--    stall every audited write by leaving a transaction open after one insert). An event is inserted
--    unsealed (seq, prev_hash and hash NULL; event_id its identity) without any lock. At commit a deferred
--    constraint trigger seals the transaction's events, and any committed events still unsealed, into the
--    chain under the same advisory lock, taken with pg_try_advisory_xact_lock: a writer never waits for it.
--    When another transaction holds it (sealing at that moment, or a session that forced the seal early
--    with SET CONSTRAINTS and stays open), the events stay unsealed and the next commit or `cdp audit
--    verify` (audit.seal()) chains them. The sealing UPDATE is the only change audit.refuse_change lets
--    through: seq, prev_hash and hash from NULL to values, by cdp_definer, nothing else changed.
--
-- 4. Donation corrections: the person who requests or decides is the database login (session_user), not
--    the cdp.actor setting; a decision by the requesting login is refused by the function and by a check
--    on the table. Finance and admin lose UPDATE on core.donation: a donation's status, donor, transaction
--    id and money change only through the pipeline (cdp_loader) or an approved correction.

-- ---------------------------------------------------------------------------------------------------------
-- The owner roles.
-- ---------------------------------------------------------------------------------------------------------
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cdp_definer') THEN
        CREATE ROLE cdp_definer NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cdp_login_admin') THEN
        CREATE ROLE cdp_login_admin NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB CREATEROLE NOINHERIT;
    END IF;
END
$$;
GRANT cdp_loader, cdp_viewer, cdp_editor, cdp_admin, cdp_finance, cdp_partner, cdp_outreach
    TO cdp_login_admin WITH ADMIN TRUE, INHERIT FALSE, SET FALSE;

GRANT USAGE ON SCHEMA raw, core, ops, audit, privacy TO cdp_definer;
GRANT USAGE ON SCHEMA core, audit, privacy TO cdp_login_admin;
GRANT INSERT ON core.partner_login TO cdp_login_admin;

-- Reads: the erasures find a person's records everywhere; the corrections read donations.
-- Tables only: a view's grants are the definitions' (sql/definitions/), which rebuild them.
DO $$
DECLARE target regclass;
BEGIN
    FOR target IN SELECT c.oid FROM pg_class c
                  WHERE c.relkind IN ('r', 'p') AND c.relnamespace::regnamespace::text IN ('raw', 'core', 'ops', 'audit')
    LOOP
        EXECUTE format('GRANT SELECT ON %s TO cdp_definer', target);
    END LOOP;
END
$$;
-- Writes, each for the function named.
GRANT UPDATE ON raw.records, ops.quarantine, ops.webhook_rejection, ops.webhook_undeliverable,
    core.survey_response, core.person_source_id, core.household, core.person
    TO cdp_definer;                                                             -- privacy.erase_person
GRANT INSERT, UPDATE ON core.consent TO cdp_definer;                            -- privacy.erase_person
GRANT UPDATE ON ops.legacy_clean_record, ops.legacy_review, ops.referral_legacy, ops.crm_push_error,
    ops.crm_push_state, ops.crm_push_change, ops.crm_push_conflict TO cdp_definer;  -- privacy.erase_person_ops
GRANT UPDATE ON core.support_ticket TO cdp_definer;                             -- core.erase_support_tickets
GRANT INSERT, UPDATE ON ops.donation_correction TO cdp_definer;                 -- ops.*_donation_correction
GRANT UPDATE ON core.donation TO cdp_definer;                                   -- ops.decide_donation_correction
GRANT UPDATE ON ops.identity_pair TO cdp_definer;                               -- ops.apply_identity_decision
GRANT INSERT, UPDATE ON audit.audit_events, audit.personal_image TO cdp_definer;  -- the audit trail
GRANT USAGE ON ALL SEQUENCES IN SCHEMA core TO cdp_definer;                    -- core.consent's ids

-- The tables under row-level security are all rows to the definer functions, as they were to their owner.
CREATE POLICY definer_all_rows ON core.organization TO cdp_definer USING (true) WITH CHECK (true);
CREATE POLICY definer_all_rows ON core.organization_membership TO cdp_definer USING (true) WITH CHECK (true);
CREATE POLICY definer_all_rows ON core.enrollment TO cdp_definer USING (true) WITH CHECK (true);
CREATE POLICY definer_all_rows ON core.course_completion TO cdp_definer USING (true) WITH CHECK (true);
CREATE POLICY definer_all_rows ON core.certificate TO cdp_definer USING (true) WITH CHECK (true);
CREATE POLICY definer_all_rows ON core.person TO cdp_definer USING (true) WITH CHECK (true);

-- Ownership. CREATE OR REPLACE keeps an owner, so the definitions re-applied after this keep these.
ALTER FUNCTION audit.chain_event() OWNER TO cdp_definer;
ALTER FUNCTION audit.record_change() OWNER TO cdp_definer;
ALTER FUNCTION audit.record_event(text, text, text, jsonb, jsonb, jsonb) OWNER TO cdp_definer;
ALTER FUNCTION audit.personal_image_seals() OWNER TO cdp_definer;
ALTER FUNCTION ops.request_donation_correction(text, jsonb, text) OWNER TO cdp_definer;
ALTER FUNCTION ops.decide_donation_correction(bigint, boolean, text) OWNER TO cdp_definer;
ALTER FUNCTION ops.approve_donation_correction(bigint, text) OWNER TO cdp_definer;
ALTER FUNCTION ops.reject_donation_correction(bigint, text) OWNER TO cdp_definer;
ALTER FUNCTION ops.latest_applied_correction(uuid) OWNER TO cdp_definer;
ALTER FUNCTION ops.apply_identity_decision() OWNER TO cdp_definer;
ALTER FUNCTION core.erase_support_tickets() OWNER TO cdp_definer;
ALTER FUNCTION privacy.current_partner() OWNER TO cdp_definer;
ALTER FUNCTION privacy.erase_person(uuid, text) OWNER TO cdp_definer;
ALTER FUNCTION privacy.erase_person_ops(uuid, text) OWNER TO cdp_definer;
ALTER FUNCTION privacy.create_login(text, text, text, uuid) OWNER TO cdp_login_admin;
-- What the definer functions call.
GRANT EXECUTE ON FUNCTION privacy.person_and_merged(uuid), privacy.raw_records_of(uuid), privacy.redact(jsonb),
    privacy.legacy_rows_of(uuid) TO cdp_definer;

-- ---------------------------------------------------------------------------------------------------------
-- The audit trail: written by the warehouse only, sealed at commit.
-- ---------------------------------------------------------------------------------------------------------
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit.audit_events, audit.personal_image
    FROM cdp_loader, cdp_viewer, cdp_editor, cdp_admin, cdp_finance, cdp_partner, cdp_outreach;

ALTER TABLE audit.audit_events ADD COLUMN event_id bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE audit.audit_events DROP CONSTRAINT audit_events_pkey;
ALTER TABLE audit.audit_events ADD CONSTRAINT audit_events_pkey PRIMARY KEY (event_id);
ALTER TABLE audit.audit_events ALTER COLUMN seq DROP NOT NULL,
                               ALTER COLUMN prev_hash DROP NOT NULL,
                               ALTER COLUMN hash DROP NOT NULL;
ALTER TABLE audit.audit_events ADD CONSTRAINT audit_events_seq_key UNIQUE (seq);
ALTER TABLE audit.audit_events ADD CONSTRAINT audit_events_sealed_whole
    CHECK ((seq IS NULL) = (hash IS NULL) AND (seq IS NULL) = (prev_hash IS NULL));
CREATE INDEX audit_events_unsealed ON audit.audit_events (event_id) WHERE hash IS NULL;
COMMENT ON COLUMN audit.audit_events.event_id IS
    'The event''s identity from its insert; seq is its place in the chain, given when it is sealed at commit.';
COMMENT ON COLUMN audit.audit_events.seq IS
    'The place in the hash chain, NULL until sealed (normally at the writer''s commit; see audit.seal()).';

-- The same function as the BEFORE INSERT trigger: it tells the two apart by TG_WHEN.
CREATE CONSTRAINT TRIGGER seal_at_commit AFTER INSERT ON audit.audit_events
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION audit.chain_event();

-- ---------------------------------------------------------------------------------------------------------
-- Donations and their corrections.
-- ---------------------------------------------------------------------------------------------------------
REVOKE UPDATE ON core.donation FROM cdp_finance, cdp_admin, cdp_editor;
COMMENT ON COLUMN ops.donation_correction.requested_by IS
    'The database login that asked (session_user); before 0017, the cdp.actor setting.';
COMMENT ON COLUMN ops.donation_correction.decided_by IS
    'The database login that decided (session_user), never the requesting one; before 0017, the cdp.actor setting.';
ALTER TABLE ops.donation_correction
    ADD CONSTRAINT donation_correction_four_eyes CHECK (decided_by IS NULL OR decided_by <> requested_by) NOT VALID;
