-- 0004 quality and finance: daily count diffs, monthly reconciliation, donation corrections, data-alert state.
--
-- Privileges are granted per object here (the wider role matrix is 0005's); nothing is revoked at schema level.
--
-- History: the views and functions below are as this revision made them. Today's definition of each is
-- in sql/definitions/, which `cdp migrate` re-applies after the revisions (sql/README.md).

-- ---------------------------------------------------------------------------------------------------------
-- Count diffs: what the source reports for a window, what landed in raw, what reached core.
-- ---------------------------------------------------------------------------------------------------------
CREATE TABLE ops.count_diff_threshold (
    entity       text PRIMARY KEY,            -- a stream key ('moodle.users') or '*' for the default
    max_variance numeric NOT NULL CHECK (max_variance >= 0 AND max_variance < 1),
    note         text,
    updated_by   text NOT NULL DEFAULT current_user,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.count_diff_threshold IS
    'Largest share of records that may go missing between source and core before the count diff alerts. '
    'Row ''*'' is the default; add a row per stream key to override it (no code change).';
INSERT INTO ops.count_diff_threshold (entity, max_variance, note) VALUES ('*', 0.05, 'default for every stream');

CREATE TABLE ops.count_diff (
    count_diff_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id            text NOT NULL,
    checked_at        timestamptz NOT NULL DEFAULT now(),
    source            text NOT NULL,
    stream            text NOT NULL,
    entity            text NOT NULL,          -- the core table the stream feeds
    window_start      timestamptz NOT NULL,
    window_end        timestamptz NOT NULL,
    source_count      bigint NOT NULL CHECK (source_count >= 0),
    raw_count         bigint NOT NULL CHECK (raw_count >= 0),
    core_count        bigint NOT NULL CHECK (core_count >= 0),
    quarantined_count bigint NOT NULL CHECK (quarantined_count >= 0),
    never_fetched     bigint NOT NULL,        -- source - raw: the source has them, we never received them
    dropped           bigint NOT NULL,        -- raw - core - quarantined: received, then silently lost
    variance          numeric NOT NULL,       -- |source - core| / greatest(source, core)
    threshold         numeric NOT NULL,
    status            text NOT NULL CHECK (status IN ('ok', 'empty', 'alert')),
    loss_location     text NOT NULL
                      CHECK (loss_location IN ('none', 'never_fetched', 'rejected', 'dropped', 'mixed',
                                               'source_reports_fewer')),
    repair            text,
    UNIQUE (run_id, source, stream, window_start, window_end),
    CHECK (window_end > window_start)
);
CREATE INDEX count_diff_stream_window ON ops.count_diff (source, stream, window_start DESC);
COMMENT ON TABLE ops.count_diff IS 'History of daily count diffs per stream and window (cdp_count_diff).';

-- A payload's cursor time: epoch seconds (Moodle, Stripe) or ISO 8601 text (Salesforce, surveys).
CREATE FUNCTION ops.payload_time(p_payload jsonb, p_field text) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_payload ->> p_field IS NULL OR p_payload ->> p_field = '' THEN NULL
        WHEN p_payload ->> p_field ~ '^\d+(\.\d+)?$' THEN to_timestamp((p_payload ->> p_field)::double precision)
        ELSE (p_payload ->> p_field)::timestamptz
    END
$$;

-- Raw, core and quarantine counts for one stream and window, by each record's latest landed version.
-- p_core_table / p_key_source: where a record of the stream shows up in core, keyed by (source,
-- source_record_id) (people: core.person_source_id with the stream's person key space).
CREATE FUNCTION ops.count_window(
    p_source text, p_stream text, p_core_table regclass, p_key_source text, p_cursor_field text,
    p_since timestamptz, p_until timestamptz
) RETURNS TABLE (raw_count bigint, core_count bigint, quarantined_count bigint)
    LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        $q$
        WITH latest AS (
            SELECT DISTINCT ON (r.source_record_id) r.source_record_id, r.payload
            FROM raw.records r
            WHERE r.source = $1 AND r.stream = $2 AND r.source_record_id IS NOT NULL
            ORDER BY r.source_record_id, r.raw_id DESC
        ), in_window AS (
            SELECT l.source_record_id,
                   EXISTS (SELECT 1 FROM %s c WHERE c.source = $3 AND c.source_record_id = l.source_record_id)
                       AS in_core
            FROM latest l
            WHERE ops.payload_time(l.payload, $4) >= $5 AND ops.payload_time(l.payload, $4) < $6
        )
        SELECT count(*)::bigint,
               count(*) FILTER (WHERE w.in_core)::bigint,
               count(*) FILTER (WHERE NOT w.in_core AND EXISTS (
                   SELECT 1 FROM ops.quarantine q
                   WHERE q.source = $1 AND q.stream = $2 AND q.source_record_id = w.source_record_id
                     AND q.resolved_at IS NULL))::bigint
        FROM in_window w
        $q$, p_core_table)
    USING p_source, p_stream, p_key_source, p_cursor_field, p_since, p_until;
END
$$;

-- ---------------------------------------------------------------------------------------------------------
-- Reconciliation: warehouse donations vs Stripe balance transactions vs the ledger, per month.
-- ---------------------------------------------------------------------------------------------------------
-- How the ledger's accounts map to what reconciliation compares (finance edits this, not code).
CREATE TABLE ops.finance_ledger_account (
    account text PRIMARY KEY,
    kind    text NOT NULL CHECK (kind IN ('contribution', 'fee', 'refund', 'payout'))
);
INSERT INTO ops.finance_ledger_account (account, kind) VALUES
    ('4000 Contributions', 'contribution'),
    ('6100 Payment processing fees', 'fee'),
    ('4090 Contribution refunds', 'refund'),
    ('1020 Stripe payouts', 'payout');

CREATE TABLE ops.reconciliation_run (
    run_id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    month             date NOT NULL CHECK (extract(day FROM month) = 1),
    airflow_run_id    text,
    started_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    status            text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'passed', 'failed')),
    gifts             bigint,
    unexplained_count bigint,
    report_html       text,
    report_csv        text
);
CREATE INDEX reconciliation_run_month ON ops.reconciliation_run (month, run_id DESC);

-- Totals per class and currency for every run (matched included): the month-over-month history.
CREATE TABLE ops.reconciliation_total (
    run_id           bigint NOT NULL REFERENCES ops.reconciliation_run ON DELETE CASCADE,
    class            text NOT NULL,
    currency         char(3) NOT NULL DEFAULT '---',
    rows             bigint NOT NULL,
    warehouse_minor  bigint NOT NULL DEFAULT 0,
    stripe_minor     bigint NOT NULL DEFAULT 0,
    ledger_minor     bigint NOT NULL DEFAULT 0,
    difference_minor bigint NOT NULL DEFAULT 0,
    unexplained      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, class, currency)
);

-- The differing rows (every class but the accounted ones), traced to donor and campaign where known.
CREATE TABLE ops.reconciliation_result (
    result_id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id                   bigint NOT NULL REFERENCES ops.reconciliation_run ON DELETE CASCADE,
    class                    text NOT NULL CHECK (class IN (
                                 'amount_mismatch', 'currency_mismatch', 'in_warehouse_not_ledger',
                                 'in_ledger_not_warehouse', 'in_stripe_only', 'not_in_stripe', 'duplicate',
                                 'fee_mismatch', 'refund_mismatch', 'payout_mismatch')),
    financial_transaction_id text,
    currency                 char(3),
    warehouse_minor          bigint,
    stripe_minor             bigint,
    ledger_minor             bigint,
    difference_minor         bigint NOT NULL,
    detail                   jsonb NOT NULL DEFAULT '{}'::jsonb,
    donation_id              uuid,
    person_id                uuid,
    campaign                 text,
    explained                boolean NOT NULL DEFAULT false,
    explanation              text
);
CREATE INDEX reconciliation_result_run ON ops.reconciliation_result (run_id, class);
CREATE INDEX reconciliation_result_ftid ON ops.reconciliation_result (financial_transaction_id);

-- A known difference finance has looked at (e.g. a gift posted in the next month): no longer fails the run.
CREATE TABLE ops.reconciliation_explanation (
    financial_transaction_id text NOT NULL,
    class                    text NOT NULL,
    note                     text NOT NULL CHECK (length(trim(note)) > 0),
    explained_by             text NOT NULL DEFAULT coalesce(nullif(current_setting('cdp.actor', true), ''), current_user),
    explained_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (financial_transaction_id, class)
);

-- Where a gift came from and what it funded: its donor, the donor's learning, the referrals they made.
CREATE VIEW ops.donation_trace AS
SELECT d.donation_id, d.financial_transaction_id, d.person_id, d.campaign, p.is_learner,
       (SELECT count(*) FROM core.enrollment e WHERE e.person_id = d.person_id) AS enrollments,
       (SELECT count(*) FROM core.course_completion c WHERE c.person_id = d.person_id) AS completions,
       (SELECT count(*) FROM core.referral r WHERE r.referrer_person_id = d.person_id) AS referrals_made,
       (SELECT co.title FROM core.enrollment e JOIN core.course co USING (course_id)
         WHERE e.person_id = d.person_id ORDER BY e.enrolled_at DESC LIMIT 1) AS latest_course
FROM core.donation d
LEFT JOIN core.person p ON p.person_id = d.person_id;

-- ---------------------------------------------------------------------------------------------------------
-- Donation corrections: a request (who, what, why, before, after) that only cdp_finance may approve.
-- Enforced here, not in the CLI: the table is written only by the functions below (owner's rights), the
-- decision functions are executable by cdp_finance alone, and a trigger refuses any change of a donation's
-- money columns except by the sync (cdp_loader: it lands what the processor says) or an approved correction.
-- ---------------------------------------------------------------------------------------------------------
CREATE TABLE ops.donation_correction (
    correction_id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    donation_id              uuid NOT NULL REFERENCES core.donation,
    financial_transaction_id text NOT NULL,
    requested_by             text NOT NULL,   -- the person (cdp.actor) asking
    requested_role           text NOT NULL,   -- the database role they asked as
    requested_at             timestamptz NOT NULL DEFAULT now(),
    reason                   text NOT NULL CHECK (length(trim(reason)) > 0),
    before                   jsonb NOT NULL,
    after                    jsonb NOT NULL,
    status                   text NOT NULL DEFAULT 'requested'
                             CHECK (status IN ('requested', 'approved', 'applied', 'rejected')),
    decided_by               text,
    decided_role             text,
    decided_at               timestamptz,
    decision_note            text,
    applied_at               timestamptz,
    CHECK (before <> after)
);
CREATE UNIQUE INDEX donation_correction_one_open ON ops.donation_correction (donation_id)
    WHERE status = 'requested';

-- The role the caller acts as, seen from inside a SECURITY DEFINER function (where current_user is the
-- owner): SET ROLE's role if set, else the login.
CREATE FUNCTION ops.calling_role() RETURNS text
    LANGUAGE sql STABLE
AS $$
    SELECT CASE WHEN current_setting('role') IN ('none', '') THEN session_user::text
                ELSE current_setting('role') END
$$;

CREATE FUNCTION ops.calling_person() RETURNS text
    LANGUAGE sql STABLE
AS $$
    SELECT coalesce(nullif(current_setting('cdp.actor', true), ''), ops.calling_role())
$$;

CREATE FUNCTION ops.request_donation_correction(
    p_financial_transaction_id text, p_changes jsonb, p_reason text
) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    allowed CONSTANT text[] := ARRAY['amount_minor', 'currency', 'fee_minor', 'refunded_minor', 'status', 'campaign'];
    bad     text[];
    current jsonb;
    target  uuid;
    new_id  bigint;
BEGIN
    IF p_changes IS NULL OR jsonb_typeof(p_changes) <> 'object' OR p_changes = '{}'::jsonb THEN
        RAISE EXCEPTION 'a correction names the fields to change, e.g. {"amount_minor": 4000}'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(k) INTO bad FROM jsonb_object_keys(p_changes) k WHERE NOT k = ANY (allowed);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'fields % cannot be corrected (allowed: %)', bad, allowed
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_reason IS NULL OR length(trim(p_reason)) = 0 THEN
        RAISE EXCEPTION 'a correction needs a reason' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT d.donation_id, jsonb_build_object('amount_minor', d.amount_minor, 'currency', d.currency,
           'fee_minor', d.fee_minor, 'refunded_minor', d.refunded_minor, 'status', d.status, 'campaign', d.campaign)
      INTO target, current
      FROM core.donation d WHERE d.financial_transaction_id = p_financial_transaction_id;
    IF target IS NULL THEN
        RAISE EXCEPTION 'no donation with financial transaction id %', p_financial_transaction_id
            USING ERRCODE = 'no_data_found';
    END IF;
    current := (SELECT jsonb_object_agg(k, current -> k) FROM jsonb_object_keys(p_changes) k);
    IF current = p_changes THEN
        RAISE EXCEPTION 'the correction changes nothing' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO ops.donation_correction (donation_id, financial_transaction_id, requested_by, requested_role,
                                         reason, before, after)
    VALUES (target, p_financial_transaction_id, ops.calling_person(), ops.calling_role(), p_reason, current,
            p_changes)
    RETURNING correction_id INTO new_id;
    PERFORM audit.record_event('correction.requested', 'core.donation', target::text,
        jsonb_build_object('correction_id', new_id, 'reason', p_reason, 'requested_by', ops.calling_person(),
                           'requested_role', ops.calling_role()),
        current, p_changes);
    RETURN new_id;
END
$$;

CREATE FUNCTION ops.decide_donation_correction(p_correction_id bigint, p_approve boolean, p_note text)
    RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    request ops.donation_correction;
    now_values jsonb;
BEGIN
    -- EXECUTE is granted to cdp_finance only; this second check holds even if a later grant widens that.
    IF NOT pg_has_role(ops.calling_role(), 'cdp_finance', 'MEMBER') THEN
        RAISE EXCEPTION 'only the finance role (cdp_finance) may approve or reject a donation correction; % may not',
            ops.calling_role() USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT * INTO request FROM ops.donation_correction WHERE correction_id = p_correction_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no correction %', p_correction_id USING ERRCODE = 'no_data_found';
    END IF;
    IF request.status <> 'requested' THEN
        RAISE EXCEPTION 'correction % is already %', p_correction_id, request.status
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF request.requested_by = ops.calling_person() THEN
        RAISE EXCEPTION 'correction % was requested by %: someone else must decide it', p_correction_id,
            request.requested_by USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT p_approve THEN
        UPDATE ops.donation_correction
           SET status = 'rejected', decided_by = ops.calling_person(), decided_role = ops.calling_role(),
               decided_at = now(), decision_note = p_note
         WHERE correction_id = p_correction_id;
        PERFORM audit.record_event('correction.rejected', 'core.donation', request.donation_id::text,
            jsonb_build_object('correction_id', p_correction_id, 'decided_by', ops.calling_person(), 'note', p_note),
            request.before, request.after);
        RETURN 'rejected';
    END IF;
    SELECT (SELECT jsonb_object_agg(k, v -> k) FROM jsonb_object_keys(request.after) k)
      INTO now_values
      FROM (SELECT jsonb_build_object('amount_minor', d.amount_minor, 'currency', d.currency,
                   'fee_minor', d.fee_minor, 'refunded_minor', d.refunded_minor, 'status', d.status,
                   'campaign', d.campaign) AS v
              FROM core.donation d WHERE d.donation_id = request.donation_id FOR UPDATE) AS s;
    IF now_values IS DISTINCT FROM request.before THEN
        RAISE EXCEPTION 'donation changed since correction % was requested (now %, requested against %)',
            p_correction_id, now_values, request.before USING ERRCODE = 'serialization_failure';
    END IF;
    UPDATE ops.donation_correction
       SET status = 'approved', decided_by = ops.calling_person(), decided_role = ops.calling_role(),
           decided_at = now(), decision_note = p_note
     WHERE correction_id = p_correction_id;
    PERFORM set_config('cdp.correction_id', p_correction_id::text, true);
    UPDATE core.donation d
       SET amount_minor   = CASE WHEN request.after ? 'amount_minor' THEN (request.after ->> 'amount_minor')::bigint ELSE d.amount_minor END,
           currency       = CASE WHEN request.after ? 'currency' THEN (request.after ->> 'currency')::char(3) ELSE d.currency END,
           fee_minor      = CASE WHEN request.after ? 'fee_minor' THEN (request.after ->> 'fee_minor')::bigint ELSE d.fee_minor END,
           refunded_minor = CASE WHEN request.after ? 'refunded_minor' THEN (request.after ->> 'refunded_minor')::bigint ELSE d.refunded_minor END,
           status         = CASE WHEN request.after ? 'status' THEN request.after ->> 'status' ELSE d.status END,
           campaign       = CASE WHEN request.after ? 'campaign' THEN request.after ->> 'campaign' ELSE d.campaign END,
           updated_at     = now()
     WHERE d.donation_id = request.donation_id;
    PERFORM set_config('cdp.correction_id', '', true);
    UPDATE ops.donation_correction SET status = 'applied', applied_at = now() WHERE correction_id = p_correction_id;
    PERFORM audit.record_event('correction.applied', 'core.donation', request.donation_id::text,
        jsonb_build_object('correction_id', p_correction_id, 'requested_by', request.requested_by,
                           'reason', request.reason, 'approved_by', ops.calling_person(),
                           'approved_role', ops.calling_role(), 'note', p_note),
        request.before, request.after);
    RETURN 'applied';
END
$$;

CREATE FUNCTION ops.approve_donation_correction(p_correction_id bigint, p_note text DEFAULT NULL) RETURNS text
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT ops.decide_donation_correction(p_correction_id, true, p_note) $$;

CREATE FUNCTION ops.reject_donation_correction(p_correction_id bigint, p_note text) RETURNS text
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT ops.decide_donation_correction(p_correction_id, false, p_note) $$;

-- The correction table is written only through the functions above (which run as its owner).
CREATE FUNCTION ops.refuse_direct_correction_write() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF NOT pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER') THEN
        RAISE EXCEPTION 'ops.donation_correction is changed only through ops.request/approve/reject_donation_correction'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
CREATE TRIGGER refuse_direct_write BEFORE INSERT OR UPDATE OR DELETE ON ops.donation_correction
    FOR EACH ROW EXECUTE FUNCTION ops.refuse_direct_correction_write();

CREATE INDEX donation_correction_donation ON ops.donation_correction (donation_id, applied_at DESC);

-- The latest applied correction of a donation, for the guard below (which runs with the writer's rights).
CREATE FUNCTION ops.latest_applied_correction(p_donation_id uuid) RETURNS ops.donation_correction
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.* FROM ops.donation_correction c
    WHERE c.donation_id = p_donation_id AND c.status = 'applied' ORDER BY c.applied_at DESC LIMIT 1
$$;

-- Nobody changes a donation's money except the sync and an approved correction. When the sync re-lands
-- the very value an applied correction replaced (an overlap window, a backfill), the correction is kept;
-- a value the source has newly changed still lands (and the next reconciliation shows any difference).
CREATE FUNCTION core.guard_donation_money() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    correction text := nullif(current_setting('cdp.correction_id', true), '');
    applied    ops.donation_correction;
    kept       jsonb;
BEGIN
    IF TG_OP = 'UPDATE' AND correction IS NULL THEN
        applied := ops.latest_applied_correction(NEW.donation_id);
        IF applied.correction_id IS NOT NULL THEN
            SELECT jsonb_object_agg(k, to_jsonb(OLD) -> k) INTO kept
              FROM jsonb_object_keys(applied.after) k
             WHERE to_jsonb(NEW) -> k = applied.before -> k AND to_jsonb(OLD) -> k = applied.after -> k;
            IF kept IS NOT NULL THEN
                NEW := jsonb_populate_record(NEW, kept);
            END IF;
        END IF;
    END IF;
    IF TG_OP = 'UPDATE' AND (NEW.amount_minor, NEW.currency, NEW.fee_minor, NEW.refunded_minor)
            IS NOT DISTINCT FROM (OLD.amount_minor, OLD.currency, OLD.fee_minor, OLD.refunded_minor) THEN
        RETURN NEW;
    END IF;
    IF pg_has_role(current_user, 'cdp_loader', 'MEMBER') THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_OP = 'UPDATE' AND correction IS NOT NULL AND EXISTS (
            SELECT 1 FROM ops.donation_correction c
            WHERE c.correction_id = correction::bigint AND c.status = 'approved' AND c.donation_id = NEW.donation_id) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'donation amounts change only through an approved correction (cdp finance correction request); % may not % them',
        current_user, lower(TG_OP) USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER guard_money BEFORE UPDATE OR DELETE ON core.donation
    FOR EACH ROW EXECUTE FUNCTION core.guard_donation_money();

-- ---------------------------------------------------------------------------------------------------------
-- Data alerts: what was last said about each situation, so a message repeats only when it changes.
-- ---------------------------------------------------------------------------------------------------------
CREATE TABLE ops.alert_state (
    alert_key    text PRIMARY KEY,             -- e.g. count_diff:moodle.users:2026-11-30
    fingerprint  text NOT NULL,                -- what the situation looked like when last reported
    active       boolean NOT NULL DEFAULT true,
    summary      text NOT NULL,
    first_seen   timestamptz NOT NULL DEFAULT now(),
    last_seen    timestamptz NOT NULL DEFAULT now(),
    last_sent_at timestamptz,
    last_run_id  text,
    times_seen   bigint NOT NULL DEFAULT 1
);

-- How many new quarantined records of one stream in a day are worth a message (settable, no code change).
CREATE TABLE ops.alert_threshold (
    alert_kind text PRIMARY KEY,
    min_count  bigint NOT NULL CHECK (min_count >= 1),
    note       text
);
INSERT INTO ops.alert_threshold (alert_kind, min_count, note)
VALUES ('quarantine', 10, 'new rejected records of one stream since the last daily check');

-- ---------------------------------------------------------------------------------------------------------
-- Privileges, per object.
-- ---------------------------------------------------------------------------------------------------------
REVOKE ALL ON ops.count_diff_threshold, ops.count_diff, ops.finance_ledger_account, ops.reconciliation_run,
    ops.reconciliation_total, ops.reconciliation_result, ops.reconciliation_explanation, ops.donation_trace,
    ops.donation_correction, ops.alert_state, ops.alert_threshold FROM PUBLIC;
GRANT SELECT ON ops.count_diff_threshold, ops.count_diff, ops.alert_state, ops.alert_threshold
    TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
GRANT SELECT ON ops.finance_ledger_account, ops.reconciliation_run, ops.reconciliation_total,
    ops.reconciliation_result, ops.reconciliation_explanation, ops.donation_trace, ops.donation_correction
    TO cdp_editor, cdp_admin, cdp_finance;
GRANT SELECT, INSERT, UPDATE ON ops.count_diff, ops.alert_state, ops.reconciliation_run,
    ops.reconciliation_total, ops.reconciliation_result TO cdp_loader;
GRANT SELECT ON ops.count_diff_threshold, ops.alert_threshold, ops.finance_ledger_account, ops.reconciliation_explanation,
    ops.donation_trace TO cdp_loader;
GRANT INSERT, UPDATE, DELETE ON ops.count_diff_threshold, ops.alert_threshold TO cdp_admin;
GRANT INSERT, UPDATE, DELETE ON ops.finance_ledger_account, ops.reconciliation_explanation TO cdp_finance;

REVOKE ALL ON FUNCTION ops.request_donation_correction(text, jsonb, text), ops.decide_donation_correction(bigint, boolean, text),
    ops.approve_donation_correction(bigint, text), ops.reject_donation_correction(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.request_donation_correction(text, jsonb, text) TO cdp_editor, cdp_admin, cdp_finance;
REVOKE ALL ON FUNCTION ops.latest_applied_correction(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.latest_applied_correction(uuid) TO cdp_loader, cdp_editor, cdp_admin, cdp_finance;
GRANT EXECUTE ON FUNCTION ops.approve_donation_correction(bigint, text), ops.reject_donation_correction(bigint, text)
    TO cdp_finance;
