-- 0001 foundation: schemas, application roles, the tamper-evident audit trail, raw landing, core model, ops.
--
-- Applied once by Alembic (`cdp migrate`), inside one transaction.
--
-- History: the views and functions below are as this revision made them. Today's definition of each is
-- in sql/definitions/, which `cdp migrate` re-applies after the revisions (sql/README.md).

-- ---------------------------------------------------------------------------------------------------------
-- Roles. Cluster-wide, so created only when missing. None of them logs in, owns a table, is superuser or
-- bypasses row-level security: login users (Airflow's, staff's) are granted one of them.
-- ---------------------------------------------------------------------------------------------------------
DO $$
DECLARE role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['cdp_loader', 'cdp_viewer', 'cdp_editor', 'cdp_admin', 'cdp_finance', 'cdp_partner']
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE', role_name);
        END IF;
    END LOOP;
END
$$;

CREATE SCHEMA raw;
CREATE SCHEMA core;
CREATE SCHEMA mart;
CREATE SCHEMA ops;
CREATE SCHEMA audit;

REVOKE ALL ON SCHEMA raw, core, mart, ops, audit FROM PUBLIC;
GRANT USAGE ON SCHEMA raw, core, mart, ops, audit
    TO cdp_loader, cdp_viewer, cdp_editor, cdp_admin, cdp_finance, cdp_partner;

-- ---------------------------------------------------------------------------------------------------------
-- audit.audit_events: append-only and hash-chained.
--
-- A BEFORE INSERT trigger takes a transaction-level advisory lock, so concurrent writers are put in one
-- order and the sequence has no gaps (the lock is held until commit, and a rolled-back writer leaves no
-- number behind). Whatever the writer puts in seq, role, time and hash columns is overwritten: only the
-- trigger decides them. Each row's hash covers the previous row's hash and the row's canonical text, so an
-- edited payload, an edited hash, or a deleted row breaks the chain; rows cut from the end are found by
-- comparing with a head hash exported outside the database after each run (`cdp audit head`).
-- ---------------------------------------------------------------------------------------------------------
CREATE TABLE audit.audit_events (
    seq          bigint PRIMARY KEY,
    occurred_at  timestamptz NOT NULL,
    db_role      text NOT NULL,
    session_role text NOT NULL,
    actor        text,
    action       text NOT NULL,
    entity_type  text NOT NULL,
    entity_id    text,
    before       jsonb,
    after        jsonb,
    details      jsonb NOT NULL DEFAULT '{}'::jsonb,
    dag_id       text,
    run_id       text,
    task_id      text,
    txid         bigint NOT NULL,
    prev_hash    text NOT NULL,
    hash         text NOT NULL
);
COMMENT ON TABLE audit.audit_events IS
    'Append-only, hash-chained record of every import, merge, correction, consent change and manual edit. '
    'Verify with `cdp audit verify`.';

CREATE INDEX audit_events_entity ON audit.audit_events (entity_type, entity_id);
CREATE INDEX audit_events_run ON audit.audit_events (dag_id, run_id);

-- The one definition of what a row's hash covers; `cdp audit verify` hashes the same text independently.
-- Times are hashed as epoch microseconds so that no session time zone can change the text.
CREATE FUNCTION audit.canonical_text(e audit.audit_events) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT jsonb_build_array(
        e.seq, (extract(epoch FROM e.occurred_at) * 1000000)::bigint, e.db_role, e.session_role, e.actor,
        e.action, e.entity_type, e.entity_id, e.before, e.after, e.details, e.dag_id, e.run_id, e.task_id, e.txid
    )::text
$$;

CREATE FUNCTION audit.chain_event() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    last_seq  bigint;
    last_hash text;
BEGIN
    -- One writer at a time until commit: the only way to get one gap-free order under concurrency.
    PERFORM pg_advisory_xact_lock(7402113001);
    SELECT seq, hash INTO last_seq, last_hash FROM audit.audit_events ORDER BY seq DESC LIMIT 1;
    NEW.seq := coalesce(last_seq, 0) + 1;
    NEW.prev_hash := coalesce(last_hash, repeat('0', 64));
    NEW.occurred_at := clock_timestamp();
    NEW.db_role := current_user;
    NEW.session_role := session_user;
    NEW.txid := txid_current();
    NEW.details := coalesce(NEW.details, '{}'::jsonb);
    NEW.actor := coalesce(NEW.actor, nullif(current_setting('cdp.actor', true), ''));
    NEW.dag_id := coalesce(NEW.dag_id, nullif(current_setting('cdp.dag_id', true), ''));
    NEW.run_id := coalesce(NEW.run_id, nullif(current_setting('cdp.run_id', true), ''));
    NEW.task_id := coalesce(NEW.task_id, nullif(current_setting('cdp.task_id', true), ''));
    NEW.hash := encode(sha256(convert_to(NEW.prev_hash || audit.canonical_text(NEW), 'UTF8')), 'hex');
    RETURN NEW;
END
$$;

CREATE FUNCTION audit.refuse_change() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'audit.audit_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER chain_event BEFORE INSERT ON audit.audit_events
    FOR EACH ROW EXECUTE FUNCTION audit.chain_event();
CREATE TRIGGER refuse_update_delete BEFORE UPDATE OR DELETE ON audit.audit_events
    FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER refuse_truncate BEFORE TRUNCATE ON audit.audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();

REVOKE ALL ON audit.audit_events FROM PUBLIC;
GRANT SELECT, INSERT ON audit.audit_events
    TO cdp_loader, cdp_viewer, cdp_editor, cdp_admin, cdp_finance, cdp_partner;

-- Application events (imports, merges, corrections, consent changes) go through this function.
CREATE FUNCTION audit.record_event(
    p_action text, p_entity_type text, p_entity_id text DEFAULT NULL,
    p_details jsonb DEFAULT '{}'::jsonb, p_before jsonb DEFAULT NULL, p_after jsonb DEFAULT NULL
) RETURNS bigint
    LANGUAGE sql
AS $$
    INSERT INTO audit.audit_events (seq, occurred_at, db_role, session_role, action, entity_type, entity_id,
                                    before, after, details, txid, prev_hash, hash)
    VALUES (0, now(), '', '', p_action, p_entity_type, p_entity_id, p_before, p_after,
            coalesce(p_details, '{}'::jsonb), 0, '', '')
    RETURNING seq
$$;

-- Row changes on audited tables: one event per statement and table, with the rows before and after.
-- Statement-level with transition tables, so a bulk upsert of 100,000 rows costs one event, not 100,000.
-- Superseded by 0012: today's definition is in sql/definitions/audit/record_change.sql.
CREATE FUNCTION audit.record_change() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    key_column  text := TG_ARGV[0];
    changed     bigint;
    rows_before jsonb;
    rows_after  jsonb;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT count(*), jsonb_agg(to_jsonb(n)) INTO changed, rows_after FROM new_rows n;
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT count(*), jsonb_agg(to_jsonb(n)) INTO changed, rows_after FROM new_rows n;
        SELECT jsonb_agg(to_jsonb(o)) INTO rows_before FROM old_rows o;
    ELSE
        SELECT count(*), jsonb_agg(to_jsonb(o)) INTO changed, rows_before FROM old_rows o;
    END IF;
    IF changed = 0 THEN
        RETURN NULL;
    END IF;
    INSERT INTO audit.audit_events (seq, occurred_at, db_role, session_role, action, entity_type, entity_id,
                                    before, after, details, txid, prev_hash, hash)
    VALUES (0, now(), '', '', lower(TG_OP), TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME,
            CASE WHEN changed = 1 THEN coalesce(rows_after, rows_before) -> 0 ->> key_column END,
            rows_before, rows_after,
            jsonb_build_object('rows', changed, 'statement', left(current_query(), 2000)),
            0, '', '');
    RETURN NULL;
END
$$;

-- Adds the three statement triggers to a table; every core table is registered through it.
CREATE FUNCTION audit.track_changes(target regclass, key_column text) RETURNS void
    LANGUAGE plpgsql
AS $$
BEGIN
    EXECUTE format('CREATE TRIGGER audit_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION audit.record_change(%L)', target, key_column);
    EXECUTE format('CREATE TRIGGER audit_update AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows '
                   'NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION audit.record_change(%L)',
                   target, key_column);
    EXECUTE format('CREATE TRIGGER audit_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION audit.record_change(%L)', target, key_column);
    EXECUTE format('CREATE TRIGGER audit_truncate BEFORE TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()', target);
END
$$;

-- ---------------------------------------------------------------------------------------------------------
-- raw: every payload exactly as received. Append-only: nothing that arrived is ever lost.
-- ---------------------------------------------------------------------------------------------------------
CREATE TABLE raw.records (
    raw_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source           text NOT NULL,
    stream           text NOT NULL,
    source_record_id text,
    run_id           text NOT NULL,
    received_at      timestamptz NOT NULL DEFAULT now(),
    payload          jsonb NOT NULL
);
CREATE INDEX records_source_record ON raw.records (source, stream, source_record_id);
CREATE INDEX records_run ON raw.records (run_id);
COMMENT ON TABLE raw.records IS 'Every source payload as received, with source, stream, run id and time.';

-- Superseded by 0005: today's definition is in sql/definitions/raw/append_only.sql.
CREATE FUNCTION raw.refuse_change() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'raw.% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER refuse_update_delete BEFORE UPDATE OR DELETE ON raw.records
    FOR EACH ROW EXECUTE FUNCTION raw.refuse_change();
CREATE TRIGGER refuse_truncate BEFORE TRUNCATE ON raw.records
    FOR EACH STATEMENT EXECUTE FUNCTION raw.refuse_change();

-- ---------------------------------------------------------------------------------------------------------
-- core: the modelled entities. One system-generated person id across every source.
-- ---------------------------------------------------------------------------------------------------------
CREATE TABLE core.household (
    household_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text,
    street       text,
    locality     text,
    postcode     text,
    region       text,
    country      text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE core.person (
    person_id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    given_name       text,
    family_name      text,
    date_of_birth    date CHECK (date_of_birth > DATE '1900-01-01'),
    email            text,
    email_normalized text,
    phone            text,
    phone_e164       text,
    country          text,
    jurisdiction     text,
    household_id     uuid REFERENCES core.household,
    is_learner       boolean NOT NULL DEFAULT false,
    is_donor         boolean NOT NULL DEFAULT false,
    merged_into      uuid REFERENCES core.person,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (merged_into IS DISTINCT FROM person_id)
);
CREATE INDEX person_email_normalized ON core.person (email_normalized);
CREATE INDEX person_household ON core.person (household_id);

-- The enforcement point for "one id across LMS, CRM, finance and CDP": a source record maps to one person.
CREATE TABLE core.person_source_id (
    source           text NOT NULL,
    source_record_id text NOT NULL,
    person_id        uuid NOT NULL REFERENCES core.person,
    first_seen_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, source_record_id)
);
CREATE INDEX person_source_id_person ON core.person_source_id (person_id);

CREATE TABLE core.organization (
    organization_id  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name             text NOT NULL,
    kind             text NOT NULL DEFAULT 'partner' CHECK (kind IN ('partner', 'funder', 'school', 'employer', 'other')),
    source           text,
    source_record_id text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_record_id)
);

-- Many-to-many: a partner registers cohorts of learners; a learner may come through several partners.
CREATE TABLE core.organization_membership (
    organization_id uuid NOT NULL REFERENCES core.organization,
    person_id       uuid NOT NULL REFERENCES core.person,
    role            text NOT NULL DEFAULT 'learner',
    cohort          text NOT NULL DEFAULT '',
    since           date,
    PRIMARY KEY (organization_id, person_id, role, cohort)
);
CREATE INDEX organization_membership_person ON core.organization_membership (person_id);

CREATE TABLE core.course (
    course_id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    source           text NOT NULL,
    source_record_id text NOT NULL,
    code             text,
    title            text NOT NULL,
    starts_on        date,
    ends_on          date,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_record_id)
);

CREATE TABLE core.enrollment (
    enrollment_id    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    person_id        uuid NOT NULL REFERENCES core.person,
    course_id        uuid NOT NULL REFERENCES core.course,
    organization_id  uuid REFERENCES core.organization,
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'completed', 'withdrawn')),
    enrolled_at      timestamptz NOT NULL,
    source           text NOT NULL,
    source_record_id text NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_record_id)
);
CREATE INDEX enrollment_person ON core.enrollment (person_id);
CREATE INDEX enrollment_course ON core.enrollment (course_id);

CREATE TABLE core.course_completion (
    completion_id    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    person_id        uuid NOT NULL REFERENCES core.person,
    course_id        uuid NOT NULL REFERENCES core.course,
    enrollment_id    uuid REFERENCES core.enrollment,
    completed_at     timestamptz NOT NULL,
    grade            numeric,
    source           text NOT NULL,
    source_record_id text NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_record_id)
);
CREATE INDEX course_completion_person ON core.course_completion (person_id);

CREATE TABLE core.certificate (
    certificate_id   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    person_id        uuid NOT NULL REFERENCES core.person,
    course_id        uuid NOT NULL REFERENCES core.course,
    completion_id    uuid REFERENCES core.course_completion,
    status           text NOT NULL DEFAULT 'requested' CHECK (status IN ('requested', 'issued', 'rejected')),
    requested_at     timestamptz NOT NULL,
    issued_at        timestamptz,
    source           text NOT NULL,
    source_record_id text NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_record_id)
);

-- Money is integer minor units with its currency: never a float, never a currency-less amount.
CREATE TABLE core.donation (
    donation_id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    financial_transaction_id text NOT NULL UNIQUE,
    person_id                uuid REFERENCES core.person,
    household_id             uuid REFERENCES core.household,
    organization_id          uuid REFERENCES core.organization,
    amount_minor             bigint NOT NULL CHECK (amount_minor >= 0),
    currency                 char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    fee_minor                bigint CHECK (fee_minor >= 0),
    received_at              timestamptz NOT NULL,
    status                   text NOT NULL DEFAULT 'succeeded'
                             CHECK (status IN ('pending', 'succeeded', 'failed', 'refunded', 'partially_refunded')),
    refunded_minor           bigint NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0),
    campaign                 text,
    source                   text NOT NULL,
    source_record_id         text NOT NULL,
    updated_at               timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_record_id)
);
CREATE INDEX donation_person ON core.donation (person_id);
CREATE INDEX donation_received_at ON core.donation (received_at);

-- Soft credits: a family member or sponsor credited for a gift someone else paid.
CREATE TABLE core.donation_soft_credit (
    donation_id  uuid NOT NULL REFERENCES core.donation,
    person_id    uuid NOT NULL REFERENCES core.person,
    amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
    role         text NOT NULL DEFAULT 'soft credit',
    source           text NOT NULL,
    source_record_id text NOT NULL,
    PRIMARY KEY (donation_id, person_id, role),
    UNIQUE (source, source_record_id)
);

-- Consent history: a change adds a row; the latest explicit statement per person and purpose wins.
CREATE TABLE core.consent (
    consent_id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    person_id         uuid NOT NULL REFERENCES core.person,
    purpose           text NOT NULL CHECK (purpose IN ('course_messages', 'fundraising', 'surveys', 'partner_sharing')),
    status            text NOT NULL CHECK (status IN ('given', 'refused', 'withdrawn',
                                                      'parental_consent_pending', 'parental_consent_verified')),
    lawful_basis      text,
    source            text NOT NULL,
    source_record_id  text NOT NULL,
    stated_at         timestamptz NOT NULL,
    jurisdiction      text,
    receipt_id        text,
    parental_method   text,
    given_by          text,
    evidence          jsonb NOT NULL DEFAULT '{}'::jsonb,
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_record_id)
);
CREATE INDEX consent_person_purpose ON core.consent (person_id, purpose, stated_at DESC);

CREATE TABLE core.survey_response (
    survey_response_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    person_id          uuid REFERENCES core.person,
    survey_id          text NOT NULL,
    submitted_at       timestamptz NOT NULL,
    age_reported       integer CHECK (age_reported BETWEEN 0 AND 130),
    answers            jsonb NOT NULL DEFAULT '{}'::jsonb,
    source             text NOT NULL,
    source_record_id   text NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_record_id)
);
CREATE INDEX survey_response_person ON core.survey_response (person_id);

CREATE TABLE core.referral (
    referral_id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    referrer_person_id uuid REFERENCES core.person,
    referred_person_id uuid REFERENCES core.person,
    status             text NOT NULL DEFAULT 'clicked' CHECK (status IN ('clicked', 'signed_up', 'converted', 'rejected')),
    clicked_at         timestamptz,
    signed_up_at       timestamptz,
    source             text NOT NULL,
    source_record_id   text NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_record_id)
);

CREATE TABLE core.reward (
    reward_id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    referral_id      uuid REFERENCES core.referral,
    person_id        uuid REFERENCES core.person,
    kind             text NOT NULL,
    amount_minor     bigint CHECK (amount_minor >= 0),
    currency         char(3) CHECK (currency ~ '^[A-Z]{3}$'),
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'issued', 'redeemed', 'cancelled')),
    issued_at        timestamptz,
    redeemed_at      timestamptz,
    source           text NOT NULL,
    source_record_id text NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_record_id)
);

SELECT audit.track_changes(t.regclass, t.key_column)
FROM (VALUES ('core.household'::regclass, 'household_id'), ('core.person', 'person_id'),
             ('core.person_source_id', 'source_record_id'), ('core.organization', 'organization_id'),
             ('core.organization_membership', 'person_id'), ('core.course', 'course_id'),
             ('core.enrollment', 'enrollment_id'), ('core.course_completion', 'completion_id'),
             ('core.certificate', 'certificate_id'), ('core.donation', 'donation_id'),
             ('core.donation_soft_credit', 'donation_id'), ('core.consent', 'consent_id'),
             ('core.survey_response', 'survey_response_id'), ('core.referral', 'referral_id'),
             ('core.reward', 'reward_id')) AS t(regclass, key_column);

-- ---------------------------------------------------------------------------------------------------------
-- ops: how the pipeline is doing.
-- ---------------------------------------------------------------------------------------------------------
CREATE TABLE ops.sync_watermark (
    source     text NOT NULL,
    stream     text NOT NULL,
    watermark  timestamptz NOT NULL,
    run_id     text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, stream)
);

CREATE TABLE ops.sync_run (
    run_id           text NOT NULL,
    source           text NOT NULL,
    stream           text NOT NULL,
    window_start     timestamptz,
    window_end       timestamptz NOT NULL,
    started_at       timestamptz NOT NULL,
    finished_at      timestamptz NOT NULL DEFAULT now(),
    rows_read        bigint NOT NULL DEFAULT 0 CHECK (rows_read >= 0),
    rows_landed      bigint NOT NULL DEFAULT 0 CHECK (rows_landed >= 0),
    rows_upserted    bigint NOT NULL DEFAULT 0 CHECK (rows_upserted >= 0),
    rows_quarantined bigint NOT NULL DEFAULT 0 CHECK (rows_quarantined >= 0),
    PRIMARY KEY (run_id, source, stream, window_end)
);

-- A rejected record is kept with its reason, never dropped.
CREATE TABLE ops.quarantine (
    quarantine_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source           text NOT NULL,
    stream           text NOT NULL,
    source_record_id text,
    run_id           text NOT NULL,
    reason           text NOT NULL,
    payload          jsonb NOT NULL,
    quarantined_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at      timestamptz,
    resolution       text
);
CREATE INDEX quarantine_open ON ops.quarantine (source, stream) WHERE resolved_at IS NULL;

CREATE TABLE ops.health_check (
    check_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    checked_at      timestamptz NOT NULL DEFAULT now(),
    run_id          text NOT NULL,
    server_version  text NOT NULL,
    schema_version  text NOT NULL,
    audit_head_seq  bigint,
    audit_chain_ok  boolean NOT NULL,
    details         jsonb NOT NULL DEFAULT '{}'::jsonb
);

-- ---------------------------------------------------------------------------------------------------------
-- Privileges (issue-level detail for each role comes with the access-control migration).
-- ---------------------------------------------------------------------------------------------------------
REVOKE ALL ON ALL TABLES IN SCHEMA raw, core, mart, ops FROM PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA core, mart, ops TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
GRANT SELECT, INSERT ON raw.records TO cdp_loader;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA core, ops TO cdp_loader;
GRANT SELECT ON raw.records TO cdp_admin;
