-- 0007 migration phases 2 and 3: pushing learner contact data into the CRM (push state per person, the
-- field-level plan of each run, conflicts with staff edits queued for review, per-record errors kept for
-- retry) and the ledger that makes each completion trigger (certificate request, CRM campaign member)
-- happen exactly once. Only ops tables: no personal data is kept here, values are held as sha256 hashes.
--
-- History: the views and functions below are as this revision made them. Today's definition of each is
-- in sql/definitions/, which `cdp migrate` re-applies after the revisions (sql/README.md).

-- What we last pushed to the CRM for a person and accepted by it: one hash per field, and the record's
-- LastModifiedDate read back after that push. A CRM value whose hash differs from ours was changed there.
CREATE TABLE ops.crm_push_state (
    person_id            uuid PRIMARY KEY,
    crm_object           text NOT NULL DEFAULT 'Contact',
    external_id          text NOT NULL UNIQUE,          -- CDP_Person_Id__c in the CRM
    crm_id               text UNIQUE,                   -- the CRM's record id
    field_hashes         jsonb NOT NULL DEFAULT '{}'::jsonb,
    crm_owned            text[] NOT NULL DEFAULT '{}',  -- fields staff decided the CRM keeps (never pushed)
    crm_last_modified    timestamptz,
    crm_last_modified_by text,
    last_pushed_at       timestamptz,
    last_run_id          text
);

-- One row per push run (dry or not): what was planned, sent, accepted and read back.
CREATE TABLE ops.crm_push_run (
    run_id            text PRIMARY KEY,
    dry_run           boolean NOT NULL,
    started_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    people_considered integer NOT NULL DEFAULT 0,
    creates           integer NOT NULL DEFAULT 0,
    updates           integer NOT NULL DEFAULT 0,
    unchanged         integer NOT NULL DEFAULT 0,
    fields_changed    integer NOT NULL DEFAULT 0,
    conflicts_new     integer NOT NULL DEFAULT 0,
    conflicts_open    integer NOT NULL DEFAULT 0,
    sent              integer NOT NULL DEFAULT 0,
    accepted          integer NOT NULL DEFAULT 0,
    rejected          integer NOT NULL DEFAULT 0,
    verified          integer NOT NULL DEFAULT 0,
    reconciled        boolean,
    report_path       text
);

-- The field-level plan of a run: which fields of whom would change (values only in the run's report file).
CREATE TABLE ops.crm_push_change (
    run_id    text NOT NULL REFERENCES ops.crm_push_run,
    person_id uuid NOT NULL,
    field     text NOT NULL,
    change    text NOT NULL CHECK (change IN ('create', 'update', 'conflict', 'held')),
    crm_hash  text,
    new_hash  text,
    PRIMARY KEY (run_id, person_id, field)
);

-- A CRM field that staff changed after our last push: never overwritten, queued here until someone decides
-- (keep_crm: the CRM's value stands and becomes the pushed state; push_warehouse: the next run overwrites).
CREATE TABLE ops.crm_push_conflict (
    conflict_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id            uuid NOT NULL,
    field                text NOT NULL,
    crm_id               text,
    pushed_hash          text,
    crm_hash             text,
    warehouse_hash       text,
    crm_last_modified    timestamptz,
    crm_last_modified_by text,
    detected_run_id      text NOT NULL,
    detected_at          timestamptz NOT NULL DEFAULT now(),
    resolved_at          timestamptz,
    resolution           text CHECK (resolution IN ('keep_crm', 'push_warehouse')),
    resolved_by          text,
    CHECK ((resolved_at IS NULL) = (resolution IS NULL))
);
CREATE UNIQUE INDEX crm_push_conflict_open ON ops.crm_push_conflict (person_id, field) WHERE resolved_at IS NULL;

-- A record the CRM refuses, with its reason; retried by every later run until one is accepted (one open
-- row per person and error code, counting the attempts).
CREATE TABLE ops.crm_push_error (
    error_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id       uuid NOT NULL,
    error_code      text NOT NULL,
    message         text NOT NULL,   -- the CRM's message with the values we sent blanked out
    fields          text[] NOT NULL DEFAULT '{}',
    attempts        integer NOT NULL DEFAULT 1 CHECK (attempts > 0),
    first_run_id    text NOT NULL,
    last_run_id     text NOT NULL,
    first_failed_at timestamptz NOT NULL DEFAULT now(),
    last_failed_at  timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz,
    resolved_run_id text
);
CREATE UNIQUE INDEX crm_push_error_open ON ops.crm_push_error (person_id, error_code) WHERE resolved_at IS NULL;

-- Each trigger of a course completion, once: the key is claimed (committed) before the vendor is called,
-- the vendor gets a key derived from it (an Idempotency-Key header, a CRM external id), and a claim left
-- 'sending' by a crash is sent again with the same key, which the vendor answers without acting twice.
-- rejected: the vendor refused it (reason in last_error; tried again each run); withheld: the person lost
-- eligibility (or was erased) between the claim and the send, so it was not sent.
CREATE TABLE ops.completion_trigger (
    trigger_key     text PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('certificate', 'crm_campaign')),
    idempotency_key text NOT NULL UNIQUE,
    completion_id   uuid NOT NULL,
    person_id       uuid NOT NULL,
    status          text NOT NULL CHECK (status IN ('sending', 'sent', 'rejected', 'withheld')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    vendor_id       text,
    outcome         text,
    last_error      text,
    claimed_run_id  text NOT NULL,
    claimed_at      timestamptz NOT NULL DEFAULT now(),
    sent_run_id     text,
    sent_at         timestamptz
);
CREATE INDEX completion_trigger_pending ON ops.completion_trigger (kind) WHERE status = 'sending';

-- The ledger is evidence that a trigger happened: nobody deletes from it (a deleted key would fire again).
CREATE FUNCTION ops.refuse_trigger_delete() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'ops.completion_trigger keeps every trigger: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER refuse_trigger_delete BEFORE DELETE ON ops.completion_trigger
    FOR EACH ROW EXECUTE FUNCTION ops.refuse_trigger_delete();
CREATE TRIGGER refuse_trigger_truncate BEFORE TRUNCATE ON ops.completion_trigger
    FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_trigger_delete();

REVOKE ALL ON ops.crm_push_state, ops.crm_push_run, ops.crm_push_change, ops.crm_push_conflict,
    ops.crm_push_error, ops.completion_trigger FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON ops.crm_push_state, ops.crm_push_run, ops.crm_push_change,
    ops.crm_push_conflict, ops.crm_push_error, ops.completion_trigger TO cdp_loader;
GRANT DELETE ON ops.crm_push_change, ops.crm_push_state TO cdp_loader;
GRANT SELECT ON ops.crm_push_state, ops.crm_push_run, ops.crm_push_change, ops.crm_push_conflict,
    ops.crm_push_error, ops.completion_trigger TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
-- Staff decide conflicts.
GRANT UPDATE (resolved_at, resolution, resolved_by) ON ops.crm_push_conflict TO cdp_editor, cdp_admin;
