-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Added by issue 19 (revision 0031 has the tables).

-- Which program a course belongs to, and which funds pay for a program with what share, each from a date:
-- changed only through a request that another login approves (four eyes), like a donation correction
-- (ops/donation_correction.sql). Staff (cdp_editor, cdp_admin, cdp_finance) request; finance (cdp_finance)
-- approves or rejects; requester and decider are database logins (ops.calling_person). A change applies
-- forward: from its date the course's (or program's) open mapping ends and the new one starts; history
-- before the date is never rewritten. Every step is an audit event, and the row triggers record the rows.

CREATE OR REPLACE FUNCTION ops.find_course(p_course text) RETURNS uuid
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found uuid[];
BEGIN
    -- A course by its id, by source:record id (e.g. moodle:42), or by its code when one course has it.
    SELECT array_agg(c.course_id) INTO found FROM core.course c
     WHERE c.course_id::text = p_course OR c.source || ':' || c.source_record_id = p_course;
    IF found IS NULL THEN
        SELECT array_agg(c.course_id) INTO found FROM core.course c WHERE c.code = p_course;
    END IF;
    IF found IS NULL THEN
        RAISE EXCEPTION 'no course %', p_course USING ERRCODE = 'no_data_found';
    END IF;
    IF cardinality(found) > 1 THEN
        RAISE EXCEPTION 'course code % names % courses: give its id or source:id', p_course, cardinality(found)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN found[1];
END
$$;
REVOKE ALL ON FUNCTION ops.find_course(text) FROM PUBLIC;

-- {fund: share} with funds by id or GAU Salesforce Id -> {fund_id: share}; shares > 0 summing to exactly 1.
CREATE OR REPLACE FUNCTION ops.program_funds_checked(p_funds jsonb) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result jsonb := '{}'::jsonb;
    total  numeric := 0;
    item   record;
    fund   uuid;
    share  numeric;
BEGIN
    IF p_funds IS NULL OR jsonb_typeof(p_funds) <> 'object' THEN
        RAISE EXCEPTION 'funds are {"<fund id or GAU id>": share, ...} (or {} for none)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR item IN SELECT key, value FROM jsonb_each(p_funds) LOOP
        SELECT f.fund_id INTO fund FROM core.fund f
         WHERE (f.fund_id::text = item.key OR f.source_record_id = item.key) AND f.deleted_at IS NULL;
        IF fund IS NULL THEN
            RAISE EXCEPTION 'no fund % (or it was deleted in the CRM)', item.key USING ERRCODE = 'no_data_found';
        END IF;
        IF jsonb_typeof(item.value) <> 'number' THEN
            RAISE EXCEPTION 'the share of fund % is a number between 0 and 1', item.key
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        share := item.value::text::numeric;
        IF share <= 0 OR share > 1 OR share <> round(share, 6) THEN
            RAISE EXCEPTION 'the share of fund % must be above 0, at most 1, with at most 6 decimals', item.key
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF result ? fund::text THEN
            RAISE EXCEPTION 'fund % named twice', item.key USING ERRCODE = 'invalid_parameter_value';
        END IF;
        result := result || jsonb_build_object(fund::text, share);
        total := total + share;
    END LOOP;
    IF result <> '{}'::jsonb AND total <> 1 THEN
        RAISE EXCEPTION 'the shares of a program''s funds add up to 1 (they add up to %)', total
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN result;
END
$$;
REVOKE ALL ON FUNCTION ops.program_funds_checked(jsonb) FROM PUBLIC;

CREATE OR REPLACE FUNCTION ops.request_program_change(
    p_kind text, p_program text, p_course text, p_funds jsonb, p_valid_from date, p_reason text
) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    course uuid;
    funds  jsonb;
    new_id bigint;
BEGIN
    IF p_kind NOT IN ('course', 'funds') THEN
        RAISE EXCEPTION 'a program change is of a course (kind course) or of a program''s funds (kind funds)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_program IS NULL OR length(trim(p_program)) = 0 OR p_valid_from IS NULL THEN
        RAISE EXCEPTION 'a program change names the program and the date it starts'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_reason IS NULL OR length(trim(p_reason)) = 0 THEN
        RAISE EXCEPTION 'a program change needs a reason' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_kind = 'course' THEN
        course := ops.find_course(p_course);
    ELSE
        funds := ops.program_funds_checked(p_funds);
    END IF;
    INSERT INTO ops.program_change (kind, program, course_id, funds, valid_from, reason, requested_by, requested_role)
    VALUES (p_kind, trim(p_program), course, funds, p_valid_from, p_reason, ops.calling_person(), ops.calling_role())
    RETURNING change_id INTO new_id;
    PERFORM audit.record_event('program_change.requested', 'ops.program_change', new_id::text,
        jsonb_build_object('kind', p_kind, 'program', trim(p_program), 'course_id', course, 'funds', funds,
                           'valid_from', p_valid_from, 'reason', p_reason, 'requested_by', ops.calling_person(),
                           'requested_role', ops.calling_role(),
                           'claimed_actor', nullif(pg_catalog.current_setting('cdp.actor', true), '')),
        NULL, NULL);
    RETURN new_id;
END
$$;
REVOKE ALL ON FUNCTION ops.request_program_change(text, text, text, jsonb, date, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.request_program_change(text, text, text, jsonb, date, text)
    TO cdp_editor, cdp_admin, cdp_finance;

CREATE OR REPLACE FUNCTION ops.decide_program_change(p_change_id bigint, p_approve boolean, p_note text)
    RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    request ops.program_change;
    program bigint;
    later   date;
BEGIN
    IF NOT pg_has_role(ops.calling_role(), 'cdp_finance', 'MEMBER') THEN
        RAISE EXCEPTION 'only the finance role (cdp_finance) may approve or reject a program change; % may not',
            ops.calling_role() USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT * INTO request FROM ops.program_change WHERE change_id = p_change_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no program change %', p_change_id USING ERRCODE = 'no_data_found';
    END IF;
    IF request.status <> 'requested' THEN
        RAISE EXCEPTION 'program change % is already %', p_change_id, request.status
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF request.requested_by = ops.calling_person() THEN
        RAISE EXCEPTION 'program change % was requested by login %: another login must decide it', p_change_id,
            request.requested_by USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT p_approve THEN
        UPDATE ops.program_change
           SET status = 'rejected', decided_by = ops.calling_person(), decided_role = ops.calling_role(),
               decided_at = now(), decision_note = p_note
         WHERE change_id = p_change_id;
        PERFORM audit.record_event('program_change.rejected', 'ops.program_change', p_change_id::text,
            jsonb_build_object('decided_by', ops.calling_person(), 'note', p_note), NULL, NULL);
        RETURN 'rejected';
    END IF;

    INSERT INTO core.program (name) VALUES (request.program) ON CONFLICT (name) DO NOTHING;
    SELECT p.program_id INTO program FROM core.program p WHERE p.name = request.program;
    IF request.kind = 'course' THEN
        SELECT max(valid_from) INTO later FROM core.program_course
         WHERE course_id = request.course_id AND valid_from >= request.valid_from;
        IF later IS NOT NULL THEN
            RAISE EXCEPTION 'the course already has a program from % (on or after %): changes apply forward',
                later, request.valid_from USING ERRCODE = 'invalid_parameter_value';
        END IF;
        UPDATE core.program_course SET valid_to = request.valid_from
         WHERE course_id = request.course_id AND (valid_to IS NULL OR valid_to > request.valid_from);
        INSERT INTO core.program_course (course_id, program_id, valid_from, change_id)
        VALUES (request.course_id, program, request.valid_from, p_change_id);
    ELSE
        SELECT max(valid_from) INTO later FROM core.program_fund
         WHERE program_id = program AND valid_from >= request.valid_from;
        IF later IS NOT NULL THEN
            RAISE EXCEPTION 'the program already has funds from % (on or after %): changes apply forward',
                later, request.valid_from USING ERRCODE = 'invalid_parameter_value';
        END IF;
        -- The funds are checked again: one may have been deleted in the CRM since the request.
        PERFORM ops.program_funds_checked(request.funds);
        UPDATE core.program_fund SET valid_to = request.valid_from
         WHERE program_id = program AND (valid_to IS NULL OR valid_to > request.valid_from);
        INSERT INTO core.program_fund (program_id, fund_id, share, valid_from, change_id)
        SELECT program, key::uuid, value::text::numeric, request.valid_from, p_change_id
        FROM jsonb_each(request.funds);
    END IF;
    UPDATE ops.program_change
       SET status = 'applied', decided_by = ops.calling_person(), decided_role = ops.calling_role(),
           decided_at = now(), decision_note = p_note
     WHERE change_id = p_change_id;
    PERFORM audit.record_event('program_change.applied', 'ops.program_change', p_change_id::text,
        jsonb_build_object('kind', request.kind, 'program', request.program, 'course_id', request.course_id,
                           'funds', request.funds, 'valid_from', request.valid_from,
                           'requested_by', request.requested_by, 'reason', request.reason,
                           'approved_by', ops.calling_person(), 'approved_role', ops.calling_role(),
                           'note', p_note),
        NULL, NULL);
    RETURN 'applied';
END
$$;
REVOKE ALL ON FUNCTION ops.decide_program_change(bigint, boolean, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION ops.approve_program_change(p_change_id bigint, p_note text DEFAULT NULL) RETURNS text
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT ops.decide_program_change(p_change_id, true, p_note) $$;
REVOKE ALL ON FUNCTION ops.approve_program_change(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.approve_program_change(bigint, text) TO cdp_finance;

CREATE OR REPLACE FUNCTION ops.reject_program_change(p_change_id bigint, p_note text) RETURNS text
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT ops.decide_program_change(p_change_id, false, p_note) $$;
REVOKE ALL ON FUNCTION ops.reject_program_change(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.reject_program_change(bigint, text) TO cdp_finance;

ALTER FUNCTION ops.find_course(text) OWNER TO cdp_definer;
ALTER FUNCTION ops.program_funds_checked(jsonb) OWNER TO cdp_definer;
ALTER FUNCTION ops.request_program_change(text, text, text, jsonb, date, text) OWNER TO cdp_definer;
ALTER FUNCTION ops.decide_program_change(bigint, boolean, text) OWNER TO cdp_definer;
ALTER FUNCTION ops.approve_program_change(bigint, text) OWNER TO cdp_definer;
ALTER FUNCTION ops.reject_program_change(bigint, text) OWNER TO cdp_definer;
