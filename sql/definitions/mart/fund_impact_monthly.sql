-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Added by issue 19 (impact marts; revision 0031 has the tables).

-- Impact per fund and month (UTC), with one row (fund_id NULL, fund 'unmapped') for activity no fund paid for:
--   learners_enrolled / learners_completed   distinct people with an enrollment / completion that month;
--   enrollments_weighted / completions_weighted   the same activity counted by share (a 60/40 split counts
--       0.6 to one fund and 0.4 to the other; unmapped activity counts 1);
--   completion_rate   completions_weighted / enrollments_weighted of the month (a throughput, not a cohort);
--   nps   100 x (promoter weight 9-10 - detractor weight 0-6) / weight of NPS answers, share-weighted;
--   satisfaction_mean   share-weighted mean of the 1-5 answers;
--   allocated_minor   the revenue allocated to the fund from gifts received that month, per currency (a fund
--       with revenue in two currencies has two rows; the activity figures repeat on each);
--   cost_per_completion_minor   allocated_minor / completions_weighted, rounded to the cent (NULL with none).
-- Every figure is a sum or count over mart.fund_impact_rows with the same fund_id and month (drill down there).
CREATE OR REPLACE VIEW mart.fund_impact_monthly AS
WITH activity AS (
    SELECT fund_id, fund, month,
           count(DISTINCT person_id) FILTER (WHERE measure = 'enrollment') AS learners_enrolled,
           coalesce(sum(weight) FILTER (WHERE measure = 'enrollment'), 0) AS enrollments_weighted,
           count(DISTINCT person_id) FILTER (WHERE measure = 'completion') AS learners_completed,
           coalesce(sum(weight) FILTER (WHERE measure = 'completion'), 0) AS completions_weighted,
           count(*) FILTER (WHERE measure = 'survey_response') AS survey_responses,
           count(nps_score) AS nps_answers,
           round(100 * (coalesce(sum(weight) FILTER (WHERE nps_score >= 9), 0)
                        - coalesce(sum(weight) FILTER (WHERE nps_score <= 6), 0))
                 / nullif(sum(weight) FILTER (WHERE nps_score IS NOT NULL), 0), 1) AS nps,
           count(satisfaction_score) AS satisfaction_answers,
           round(sum(weight * satisfaction_score)
                 / nullif(sum(weight) FILTER (WHERE satisfaction_score IS NOT NULL), 0), 2) AS satisfaction_mean
    FROM mart.fund_impact_rows
    WHERE measure <> 'allocation'
    GROUP BY fund_id, fund, month
), revenue AS (
    SELECT fund_id, fund, month, currency, sum(amount_minor)::bigint AS allocated_minor
    FROM mart.fund_impact_rows
    WHERE measure = 'allocation'
    GROUP BY fund_id, fund, month, currency
), joined AS (
    SELECT coalesce(a.fund_id, r.fund_id) AS fund_id, coalesce(a.fund, r.fund) AS fund,
           coalesce(a.month, r.month) AS month, r.currency,
           coalesce(a.learners_enrolled, 0) AS learners_enrolled,
           coalesce(a.enrollments_weighted, 0) AS enrollments_weighted,
           coalesce(a.learners_completed, 0) AS learners_completed,
           coalesce(a.completions_weighted, 0) AS completions_weighted,
           coalesce(a.survey_responses, 0) AS survey_responses, coalesce(a.nps_answers, 0) AS nps_answers,
           a.nps, coalesce(a.satisfaction_answers, 0) AS satisfaction_answers, a.satisfaction_mean,
           r.allocated_minor
    FROM activity a
    FULL JOIN revenue r ON r.fund_id = a.fund_id AND r.month = a.month
)
SELECT fund_id, fund, (fund_id IS NULL) AS unmapped, month, learners_enrolled, enrollments_weighted,
       learners_completed, completions_weighted,
       round(completions_weighted / nullif(enrollments_weighted, 0), 4) AS completion_rate,
       survey_responses, nps_answers, nps, satisfaction_answers, satisfaction_mean, currency,
       coalesce(allocated_minor, 0) AS allocated_minor,
       CASE WHEN completions_weighted > 0 AND allocated_minor IS NOT NULL
            THEN round(allocated_minor / completions_weighted)::bigint END AS cost_per_completion_minor
FROM joined;
COMMENT ON VIEW mart.fund_impact_monthly IS
    'Per fund (and unmapped) and month: learners enrolled and completed (distinct and share-weighted), completion '
    'rate, NPS and satisfaction, allocated revenue per currency and cost per completion. Rows: mart.fund_impact_rows.';
REVOKE ALL ON mart.fund_impact_monthly FROM PUBLIC;
GRANT SELECT ON mart.fund_impact_monthly TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
