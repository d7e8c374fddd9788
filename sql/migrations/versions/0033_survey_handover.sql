-- 0033 The survey hand-over ledger (issue 18, part 2: hand-over to the organisation's survey tool).
--
-- After the weekly draw (revision 0030) records who is asked, the survey_sampling DAG's `hand_over` task gives
-- each invitation to the organisation's tool: SurveyMonkey (contact list + email collector + invite message),
-- Typeform or Zigpoll (a prefilled link carrying the invitation id, delivered as a segment file). This ledger
-- says what happened to each invitation:
--
--   ops.survey_handover          one row per invitation (its key): the latest outcome, the tool's id for it
--                                (the SurveyMonkey recipient id; the prefilled link), the batch (collector and
--                                message; the segment file), attempts, when handed over;
--   ops.survey_handover_attempt  every attempt, append-only: a failure is kept with its reason even after a retry
--                                succeeds.
--
-- Outcomes: 'sending' (the tool was asked to send; until the send is confirmed the invitation is never retried,
-- so a crash between sending and recording cannot invite anybody twice: it waits for a person to look),
-- 'handed_over' (final), 'failed' (kept with its reason, retried on the next run), 'not_eligible' (final: the
-- person left mart.outreach_eligible for surveys between the draw and the hand-over; the reason says so).
--
-- Least privilege. Both tables are written only by two SECURITY DEFINER functions of cdp_definer
-- (sql/definitions/ops/survey_handover_due.sql, record_survey_handover.sql): the first re-checks consent at
-- hand-over time and returns the contact details of the invitations due, the second records an outcome and
-- refuses to change a final one. The DAG's login (cdp_loader) and cdp_admin hold EXECUTE on them; no caller
-- reads mart.outreach_eligible itself or can mark an invitation handed over twice.

CREATE TABLE ops.survey_handover (
    invitation_id    uuid PRIMARY KEY REFERENCES ops.survey_invitation,
    tool             text NOT NULL CHECK (tool IN ('surveymonkey', 'typeform', 'zigpoll')),
    outcome          text NOT NULL CHECK (outcome IN ('sending', 'handed_over', 'failed', 'not_eligible')),
    reason           text,
    tool_ref         text,
    batch_ref        text,
    attempts         integer NOT NULL DEFAULT 1 CHECK (attempts >= 1),
    run_id           text,
    first_attempt_at timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    handed_over_at   timestamptz,
    CHECK ((outcome = 'handed_over') = (handed_over_at IS NOT NULL)),
    CHECK (outcome NOT IN ('failed', 'not_eligible') OR reason IS NOT NULL)
);
-- The SurveyMonkey recipient id is how a response (its recipient_id) links back: one invitation per recipient.
CREATE UNIQUE INDEX survey_handover_tool_ref ON ops.survey_handover (tool, tool_ref)
    WHERE tool = 'surveymonkey' AND tool_ref IS NOT NULL;
CREATE INDEX survey_handover_due ON ops.survey_handover (outcome) WHERE outcome IN ('failed', 'sending');
COMMENT ON TABLE ops.survey_handover IS
    'What happened to each survey invitation at the hand-over to its tool: sending, handed_over (final), failed '
    '(reason kept, retried next run), not_eligible (final: consent gone by hand-over time). tool_ref: the '
    'SurveyMonkey recipient id, or the prefilled Typeform/Zigpoll link; batch_ref: collector/message or segment file.';

CREATE TABLE ops.survey_handover_attempt (
    attempt_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    invitation_id uuid NOT NULL REFERENCES ops.survey_invitation,
    tool          text NOT NULL,
    outcome       text NOT NULL CHECK (outcome IN ('sending', 'handed_over', 'failed', 'not_eligible', 'refused')),
    reason        text,
    tool_ref      text,
    batch_ref     text,
    run_id        text,
    attempted_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX survey_handover_attempt_invitation ON ops.survey_handover_attempt (invitation_id, attempt_id);
COMMENT ON TABLE ops.survey_handover_attempt IS
    'Every hand-over attempt, append-only: outcome refused = a call that tried to change a final outcome.';

GRANT SELECT, INSERT, UPDATE ON ops.survey_handover TO cdp_definer;
GRANT SELECT, INSERT ON ops.survey_handover_attempt TO cdp_definer;
-- Readers: ids, outcomes, links and reasons; no contact details live here.
GRANT SELECT ON ops.survey_handover, ops.survey_handover_attempt TO cdp_loader, cdp_viewer, cdp_editor, cdp_admin;
