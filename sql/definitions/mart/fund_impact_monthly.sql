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
--   learners_reengaged / reengagement_rate   distinct learners enrolled that month who had enrolled before but
--       not in the 90 days before the month began (mart.kpi_learner_reengagement_monthly's definition, per
--       fund), and their share of learners_enrolled;
--   skills_answers / skills_improved_share   survey responses that answered the skills question, and the
--       share-weighted part of them that answered it positively (4-5 of 1-5, or yes): "% of learners
--       reporting skills improvement";
--   survey_responses_before, nps_before, satisfaction_mean_before, skills_improved_share_before   the same
--       survey outcomes of the fund's previous month (the previous period of equal length): before/after.
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
                 / nullif(sum(weight) FILTER (WHERE satisfaction_score IS NOT NULL), 0), 2) AS satisfaction_mean,
           count(DISTINCT person_id) FILTER (WHERE measure = 'enrollment' AND reengaged) AS learners_reengaged,
           count(skills_improved) AS skills_answers,
           round(coalesce(sum(weight) FILTER (WHERE skills_improved), 0)
                 / nullif(sum(weight) FILTER (WHERE skills_improved IS NOT NULL), 0), 4) AS skills_improved_share
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
           r.allocated_minor, coalesce(a.learners_reengaged, 0) AS learners_reengaged,
           coalesce(a.skills_answers, 0) AS skills_answers, a.skills_improved_share
    FROM activity a
    FULL JOIN revenue r ON r.fund_id = a.fund_id AND r.month = a.month
)
SELECT j.fund_id, j.fund, (j.fund_id IS NULL) AS unmapped, j.month, j.learners_enrolled, j.enrollments_weighted,
       j.learners_completed, j.completions_weighted,
       round(j.completions_weighted / nullif(j.enrollments_weighted, 0), 4) AS completion_rate,
       j.survey_responses, j.nps_answers, j.nps, j.satisfaction_answers, j.satisfaction_mean, j.currency,
       coalesce(j.allocated_minor, 0) AS allocated_minor,
       CASE WHEN j.completions_weighted > 0 AND j.allocated_minor IS NOT NULL
            THEN round(j.allocated_minor / j.completions_weighted)::bigint END AS cost_per_completion_minor,
       j.learners_reengaged,
       round(j.learners_reengaged::numeric / nullif(j.learners_enrolled, 0), 4) AS reengagement_rate,
       j.skills_answers, j.skills_improved_share,
       coalesce(p.survey_responses, 0) AS survey_responses_before, p.nps AS nps_before,
       p.satisfaction_mean AS satisfaction_mean_before, p.skills_improved_share AS skills_improved_share_before
FROM joined j
LEFT JOIN activity p ON p.fund_id IS NOT DISTINCT FROM j.fund_id AND p.month = (j.month - interval '1 month')::date;
COMMENT ON VIEW mart.fund_impact_monthly IS
    'Per fund (and unmapped) and month: learners enrolled and completed (distinct and share-weighted), completion '
    'rate, NPS and satisfaction, allocated revenue per currency and cost per completion, re-engagement, skills '
    'improvement, and the previous month''s survey outcomes (before/after). Rows: mart.fund_impact_rows.';
REVOKE ALL ON mart.fund_impact_monthly FROM PUBLIC;
GRANT SELECT ON mart.fund_impact_monthly TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance, cdp_funder_report;
