-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Added for revision 0033 (the survey hand-over ledger; issue 18, part 2).

-- Records one hand-over outcome for one invitation and returns the outcome it now has. Allowed: a new or failed
-- invitation becomes 'sending', 'handed_over' or 'failed'; a 'sending' one becomes 'handed_over' or 'failed'.
-- A final outcome ('handed_over', 'not_eligible') never changes: the call is kept as a 'refused' attempt and the
-- final outcome returned, so an invitation is never recorded handed over twice. Every call is an attempt row.
CREATE OR REPLACE FUNCTION ops.record_survey_handover(
    p_invitation_id uuid, p_tool text, p_outcome text, p_reason text DEFAULT NULL, p_tool_ref text DEFAULT NULL,
    p_batch_ref text DEFAULT NULL, p_run_id text DEFAULT NULL
) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    current ops.survey_handover;
    invited_tool text;
BEGIN
    IF p_outcome IS NULL OR p_outcome NOT IN ('sending', 'handed_over', 'failed') THEN
        RAISE EXCEPTION 'hand-over outcome % is not sending, handed_over or failed', p_outcome
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_outcome = 'failed' AND coalesce(p_reason, '') = '' THEN
        RAISE EXCEPTION 'a failed hand-over needs its reason' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT i.tool INTO invited_tool FROM ops.survey_invitation i WHERE i.invitation_id = p_invitation_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no survey invitation %', p_invitation_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF invited_tool <> p_tool THEN
        RAISE EXCEPTION 'invitation % is for %, not %', p_invitation_id, invited_tool, p_tool
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO current FROM ops.survey_handover h WHERE h.invitation_id = p_invitation_id FOR UPDATE;
    IF FOUND AND current.outcome IN ('handed_over', 'not_eligible') THEN
        INSERT INTO ops.survey_handover_attempt (invitation_id, tool, outcome, reason, tool_ref, batch_ref, run_id)
        VALUES (p_invitation_id, p_tool, 'refused',
                'asked to record ' || p_outcome || ' over the final outcome ' || current.outcome,
                p_tool_ref, p_batch_ref, p_run_id);
        RETURN current.outcome;
    END IF;
    IF FOUND AND current.outcome = 'sending' AND p_outcome = 'sending' THEN
        RAISE EXCEPTION 'invitation % is already being sent (batch %)', p_invitation_id, current.batch_ref
            USING ERRCODE = 'unique_violation';
    END IF;
    INSERT INTO ops.survey_handover AS h (invitation_id, tool, outcome, reason, tool_ref, batch_ref, run_id,
                                          handed_over_at)
    VALUES (p_invitation_id, p_tool, p_outcome, p_reason, p_tool_ref, p_batch_ref, p_run_id,
            CASE WHEN p_outcome = 'handed_over' THEN pg_catalog.now() END)
    ON CONFLICT ON CONSTRAINT survey_handover_pkey DO UPDATE
        SET outcome = excluded.outcome, reason = excluded.reason,
            tool_ref = coalesce(excluded.tool_ref, h.tool_ref), batch_ref = coalesce(excluded.batch_ref, h.batch_ref),
            run_id = excluded.run_id, handed_over_at = excluded.handed_over_at, updated_at = pg_catalog.now(),
            attempts = h.attempts + CASE WHEN h.outcome = 'sending' THEN 0 ELSE 1 END;
    INSERT INTO ops.survey_handover_attempt (invitation_id, tool, outcome, reason, tool_ref, batch_ref, run_id)
    VALUES (p_invitation_id, p_tool, p_outcome, p_reason, p_tool_ref, p_batch_ref, p_run_id);
    RETURN p_outcome;
END
$$;
REVOKE ALL ON FUNCTION ops.record_survey_handover(uuid, text, text, text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.record_survey_handover(uuid, text, text, text, text, text, text) TO cdp_loader, cdp_admin;
ALTER FUNCTION ops.record_survey_handover(uuid, text, text, text, text, text, text) OWNER TO cdp_definer;
