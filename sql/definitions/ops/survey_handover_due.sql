-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Added for revision 0033 (the survey hand-over ledger; issue 18, part 2).

-- The invitations of one survey and tool due for hand-over, with the contact details to hand them over: those
-- never handed over, and those whose last attempt failed (a retry). Consent is checked again now, not at the
-- draw: an invitation whose person (merged records rolled up to their survivor) is no longer in
-- mart.outreach_eligible for 'surveys' is recorded 'not_eligible' with the reason, once, and not returned.
-- Invitations 'sending' (a send not confirmed), 'handed_over' or 'not_eligible' are never returned.
-- p_week NULL: every week of the survey. At most p_limit rows, oldest invitations first.
--
-- SECURITY DEFINER (owner cdp_definer): the caller gets contact details only for invitations it may hand over
-- now, and never reads the outreach list itself (revision 0033 says why).
CREATE OR REPLACE FUNCTION ops.survey_handover_due(
    p_survey_key text, p_tool text, p_week date DEFAULT NULL, p_limit integer DEFAULT 10000, p_run_id text DEFAULT NULL
) RETURNS TABLE (invitation_id uuid, sample_week date, email text, given_name text, family_name text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    IF p_tool IS NULL OR p_tool NOT IN ('surveymonkey', 'typeform', 'zigpoll') THEN
        RAISE EXCEPTION 'survey tool % is not one of surveymonkey, typeform, zigpoll', p_tool
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- One hand-over of a survey at a time: two runs never take the same invitations.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('cdp.surveys:handover:' || p_survey_key));

    -- Consent gone since the draw: recorded, never handed over.
    WITH candidates AS (
        SELECT i.invitation_id, i.sample_week, coalesce(p.merged_into, i.person_id) AS person_id, i.created_at
        FROM ops.survey_invitation i
        JOIN core.person p ON p.person_id = i.person_id
        LEFT JOIN ops.survey_handover h ON h.invitation_id = i.invitation_id
        WHERE i.survey_key = p_survey_key AND i.tool = p_tool
          AND (p_week IS NULL OR i.sample_week = p_week)
          AND (h.invitation_id IS NULL OR h.outcome = 'failed')
    ), gone AS (
        SELECT c.invitation_id FROM candidates c
        WHERE NOT EXISTS (SELECT 1 FROM mart.outreach_eligible e WHERE e.person_id = c.person_id AND e.purpose = 'surveys')
    ), ledger AS (
        INSERT INTO ops.survey_handover AS h (invitation_id, tool, outcome, reason, run_id)
        SELECT g.invitation_id, p_tool, 'not_eligible',
               'no longer in mart.outreach_eligible for surveys at hand-over (consent withdrawn or refused since the draw)',
               p_run_id
        FROM gone g
        ON CONFLICT ON CONSTRAINT survey_handover_pkey DO UPDATE
            SET outcome = excluded.outcome, reason = excluded.reason, run_id = excluded.run_id,
                attempts = h.attempts + 1, updated_at = pg_catalog.now(), tool_ref = NULL, batch_ref = NULL
            WHERE h.outcome = 'failed'
        RETURNING h.invitation_id, h.reason
    )
    INSERT INTO ops.survey_handover_attempt (invitation_id, tool, outcome, reason, run_id)
    SELECT l.invitation_id, p_tool, 'not_eligible', l.reason, p_run_id FROM ledger l;

    RETURN QUERY
    WITH candidates AS (
        SELECT i.invitation_id, i.sample_week, coalesce(p.merged_into, i.person_id) AS person_id, i.created_at
        FROM ops.survey_invitation i
        JOIN core.person p ON p.person_id = i.person_id
        LEFT JOIN ops.survey_handover h ON h.invitation_id = i.invitation_id
        WHERE i.survey_key = p_survey_key AND i.tool = p_tool
          AND (p_week IS NULL OR i.sample_week = p_week)
          AND (h.invitation_id IS NULL OR h.outcome = 'failed')
    )
    SELECT c.invitation_id, c.sample_week, e.email, e.given_name, e.family_name
    FROM candidates c
    JOIN LATERAL (
        SELECT o.email, o.given_name, o.family_name FROM mart.outreach_eligible o
        WHERE o.person_id = c.person_id AND o.purpose = 'surveys' LIMIT 1
    ) e ON true
    ORDER BY c.created_at, c.invitation_id
    LIMIT p_limit;
END
$$;
REVOKE ALL ON FUNCTION ops.survey_handover_due(text, text, date, integer, text) FROM PUBLIC;
-- The pipeline (survey_sampling's hand_over task) and the operator.
GRANT EXECUTE ON FUNCTION ops.survey_handover_due(text, text, date, integer, text) TO cdp_loader, cdp_admin;
ALTER FUNCTION ops.survey_handover_due(text, text, date, integer, text) OWNER TO cdp_definer;
