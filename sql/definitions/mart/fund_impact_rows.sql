-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Added by issue 19 (impact marts; revision 0031 has the tables).

-- The rows behind every figure of mart.fund_impact_monthly, one per (row, fund): each enrollment, completion
-- and survey response as mart.activity_fund attributes it (fund NULL and status 'unmapped' when no fund paid
-- for it that day), with its share and weight (the share; 1 for unmapped activity), the NPS (0-10) and
-- satisfaction (1-5) a survey response gave (ops.survey_measure says which question carries which), and each
-- allocation of a gift (ops.allocation_amount) in the month the gift was received. Month: UTC calendar month.
-- Drill down with: SELECT * FROM mart.fund_impact_rows WHERE fund_id = <fund> AND month = <month>
--                  ORDER BY measure, at, row_id  (fund_id IS NULL for the unmapped row).
-- person_id only: no names or emails.
CREATE OR REPLACE VIEW mart.fund_impact_rows AS
WITH score AS (
    SELECT r.survey_response_id,
           max(v.value) FILTER (WHERE m.measure = 'nps' AND v.value BETWEEN 0 AND 10) AS nps_score,
           max(v.value) FILTER (WHERE m.measure = 'satisfaction' AND v.value BETWEEN 1 AND 5) AS satisfaction_score
    FROM core.survey_response r
    JOIN ops.survey_measure m ON m.source = r.source
    CROSS JOIN LATERAL ops.survey_answer_number(
        CASE WHEN r.source = 'zigpoll'
             THEN CASE WHEN m.question IN (r.answers ->> 'slideId', r.answers ->> 'slideTitle')
                       THEN r.answers -> 'response' END
             ELSE r.answers -> m.question END) AS v(value)
    WHERE r.deleted_at IS NULL
    GROUP BY r.survey_response_id
)
SELECT a.fund_id, coalesce(a.fund, 'unmapped') AS fund, a.status,
       date_trunc('month', a.activity_day)::date AS month, a.activity AS measure, a.activity_id AS row_id,
       a.person_id, a.course_id, a.program_id, a.activity_at AS at, a.share, coalesce(a.share, 1) AS weight,
       s.nps_score, s.satisfaction_score, NULL::uuid AS donation_id, NULL::bigint AS amount_minor,
       NULL::char(3) AS currency
FROM mart.activity_fund a
LEFT JOIN score s ON a.activity = 'survey_response' AND s.survey_response_id = a.activity_id
UNION ALL
SELECT x.fund_id, f.name, 'attributed', date_trunc('month', d.received_at AT TIME ZONE 'UTC')::date,
       'allocation', x.allocation_id, NULL::uuid, NULL::uuid, NULL::bigint, d.received_at, NULL::numeric,
       NULL::numeric, NULL::numeric, NULL::numeric, x.donation_id, x.amount_minor, x.currency
FROM ops.allocation_amount x
JOIN core.donation d USING (donation_id)
JOIN core.fund f ON f.fund_id = x.fund_id;
COMMENT ON VIEW mart.fund_impact_rows IS
    'The rows behind mart.fund_impact_monthly: each attributed (or unmapped) enrollment, completion and survey '
    'response with its share and scores, and each gift allocation, per fund and month (UTC). person_id only.';
REVOKE ALL ON mart.fund_impact_rows FROM PUBLIC;
GRANT SELECT ON mart.fund_impact_rows TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
