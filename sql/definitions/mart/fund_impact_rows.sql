-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Added by issue 19 (impact marts; revision 0031 has the tables, 0032 the 'skills' measure).

-- The rows behind every figure of mart.fund_impact_monthly, one per (row, fund): each enrollment, completion
-- and survey response as mart.activity_fund attributes it (fund NULL and status 'unmapped' when no fund paid
-- for it that day), with its share and weight (the share; 1 for unmapped activity), the NPS (0-10) and
-- satisfaction (1-5) a survey response gave (ops.survey_measure says which question carries which), and each
-- allocation of a gift (ops.allocation_amount) in the month the gift was received. Month: UTC calendar month.
--   reengaged (enrollments only): the learner had enrolled before, but not in the 90 days before the month
--       began (their latest enrollment before the 1st started more than 90 days before it): the definition of
--       mart.kpi_learner_reengagement_monthly, per row. NULL on other rows.
--   skills_improved (survey responses only): the answer to the 'skills' question (did the course improve your
--       skills): true for 4-5 on its 1-5 scale or a yes, false for 1-3 or a no, NULL when not answered (or any
--       other value); with several skills questions mapped, true when any is positive.
-- Drill down with: SELECT * FROM mart.fund_impact_rows WHERE fund_id = <fund> AND month = <month>
--                  ORDER BY measure, at, row_id  (fund_id IS NULL for the unmapped row).
-- person_id only: no names or emails.
CREATE OR REPLACE VIEW mart.fund_impact_rows AS
WITH answer AS (
    SELECT r.survey_response_id, m.measure,
           CASE WHEN r.source = 'zigpoll'
                THEN CASE WHEN m.question IN (r.answers ->> 'slideId', r.answers ->> 'slideTitle')
                          THEN r.answers -> 'response' END
                ELSE r.answers -> m.question END AS answer
    FROM core.survey_response r
    JOIN ops.survey_measure m ON m.source = r.source
    WHERE r.deleted_at IS NULL
), score AS (
    SELECT a.survey_response_id,
           max(v.value) FILTER (WHERE a.measure = 'nps' AND v.value BETWEEN 0 AND 10) AS nps_score,
           max(v.value) FILTER (WHERE a.measure = 'satisfaction' AND v.value BETWEEN 1 AND 5) AS satisfaction_score,
           bool_or(CASE WHEN jsonb_typeof(a.answer) = 'boolean' THEN a.answer = 'true'::jsonb
                        WHEN v.value BETWEEN 1 AND 5 THEN v.value >= 4 END)
               FILTER (WHERE a.measure = 'skills') AS skills_improved
    FROM answer a
    CROSS JOIN LATERAL ops.survey_answer_number(a.answer) AS v(value)
    GROUP BY a.survey_response_id
)
SELECT a.fund_id, coalesce(a.fund, 'unmapped') AS fund, a.status,
       date_trunc('month', a.activity_day)::date AS month, a.activity AS measure, a.activity_id AS row_id,
       a.person_id, a.course_id, a.program_id, a.activity_at AS at, a.share, coalesce(a.share, 1) AS weight,
       s.nps_score, s.satisfaction_score, NULL::uuid AS donation_id, NULL::bigint AS amount_minor,
       NULL::char(3) AS currency,
       CASE WHEN a.activity = 'enrollment'
            THEN coalesce((SELECT max(e.enrolled_at AT TIME ZONE 'UTC') FROM core.enrollment e
                           WHERE e.person_id = a.person_id AND e.enrolled_at AT TIME ZONE 'UTC' < b.first_day)
                          < b.first_day - interval '90 days', false)
       END AS reengaged,
       s.skills_improved
FROM mart.activity_fund a
CROSS JOIN LATERAL (SELECT date_trunc('month', a.activity_at AT TIME ZONE 'UTC') AS first_day) b
LEFT JOIN score s ON a.activity = 'survey_response' AND s.survey_response_id = a.activity_id
UNION ALL
SELECT x.fund_id, f.name, 'attributed', date_trunc('month', d.received_at AT TIME ZONE 'UTC')::date,
       'allocation', x.allocation_id, NULL::uuid, NULL::uuid, NULL::bigint, d.received_at, NULL::numeric,
       NULL::numeric, NULL::numeric, NULL::numeric, x.donation_id, x.amount_minor, x.currency, NULL::boolean,
       NULL::boolean
FROM ops.allocation_amount x
JOIN core.donation d USING (donation_id)
JOIN core.fund f ON f.fund_id = x.fund_id;
COMMENT ON VIEW mart.fund_impact_rows IS
    'The rows behind mart.fund_impact_monthly: each attributed (or unmapped) enrollment, completion and survey '
    'response with its share and scores (re-engaged enrollment, NPS, satisfaction, skills improved), and each '
    'gift allocation, per fund and month (UTC). person_id only.';
REVOKE ALL ON mart.fund_impact_rows FROM PUBLIC;
GRANT SELECT ON mart.fund_impact_rows TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance, cdp_funder_report;
