-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0004_quality_finance.sql.

-- The role the caller acts as, seen from inside a SECURITY DEFINER function (where current_user is the
-- owner): SET ROLE's role if set, else the login.
CREATE OR REPLACE FUNCTION ops.calling_role() RETURNS text
    LANGUAGE sql STABLE
AS $$
    SELECT CASE WHEN current_setting('role') IN ('none', '') THEN session_user::text
                ELSE current_setting('role') END
$$;
-- No grants: PostgreSQL's default (EXECUTE for PUBLIC).

-- The person who asks or decides: the database login (session_user), which only a password or a certificate
-- gives, never a session setting (before 0017 it was cdp.actor, which one finance login could set to two
-- names to request and approve its own correction). SET ROLE does not change it.
CREATE OR REPLACE FUNCTION ops.calling_person() RETURNS text
    LANGUAGE sql STABLE
AS $$
    SELECT session_user::text
$$;
-- No grants: PostgreSQL's default (EXECUTE for PUBLIC).

CREATE OR REPLACE FUNCTION ops.request_donation_correction(
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
                           'requested_role', ops.calling_role(),
                           'claimed_actor', nullif(pg_catalog.current_setting('cdp.actor', true), '')),
        current, p_changes);
    RETURN new_id;
END
$$;
REVOKE ALL ON FUNCTION ops.request_donation_correction(text, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.request_donation_correction(text, jsonb, text) TO cdp_editor, cdp_admin, cdp_finance;

CREATE OR REPLACE FUNCTION ops.decide_donation_correction(p_correction_id bigint, p_approve boolean, p_note text)
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
    -- Four eyes: another login decides (the table's check donation_correction_four_eyes holds it too).
    IF request.requested_by = ops.calling_person() THEN
        RAISE EXCEPTION 'correction % was requested by login %: another login must decide it', p_correction_id,
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
REVOKE ALL ON FUNCTION ops.decide_donation_correction(bigint, boolean, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION ops.approve_donation_correction(p_correction_id bigint, p_note text DEFAULT NULL) RETURNS text
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT ops.decide_donation_correction(p_correction_id, true, p_note) $$;
REVOKE ALL ON FUNCTION ops.approve_donation_correction(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.approve_donation_correction(bigint, text) TO cdp_finance;

CREATE OR REPLACE FUNCTION ops.reject_donation_correction(p_correction_id bigint, p_note text) RETURNS text
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT ops.decide_donation_correction(p_correction_id, false, p_note) $$;
REVOKE ALL ON FUNCTION ops.reject_donation_correction(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.reject_donation_correction(bigint, text) TO cdp_finance;

-- The correction table is written only through the functions above (which run as cdp_definer since 0017).
CREATE OR REPLACE FUNCTION ops.refuse_direct_correction_write() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF current_user <> 'cdp_definer'
       AND NOT pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER') THEN
        RAISE EXCEPTION 'ops.donation_correction is changed only through ops.request/approve/reject_donation_correction'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
-- No grants: PostgreSQL's default (EXECUTE for PUBLIC).

-- The latest applied correction of a donation, for the guard below (which runs with the writer's rights).
CREATE OR REPLACE FUNCTION ops.latest_applied_correction(p_donation_id uuid) RETURNS ops.donation_correction
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.* FROM ops.donation_correction c
    WHERE c.donation_id = p_donation_id AND c.status = 'applied' ORDER BY c.applied_at DESC LIMIT 1
$$;
REVOKE ALL ON FUNCTION ops.latest_applied_correction(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.latest_applied_correction(uuid) TO cdp_loader, cdp_editor, cdp_admin, cdp_finance;
