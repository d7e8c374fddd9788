-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Added for revision 0030 (survey marts; issue 18).

-- Satisfaction and net promoter score per sample week, over all courses (course_id NULL) and per course, from
-- the answers linked to their invitation. NPS = 100 x (promoters 9-10 - detractors 0-6) / NPS answers;
-- satisfaction: the mean (1-5) and the share satisfied (4-5). NULL where nobody answered that question.
CREATE OR REPLACE VIEW mart.survey_scores_weekly AS
SELECT sample_week, course_id, (GROUPING(course_id) = 1) AS all_courses,
       count(*) FILTER (WHERE responded) AS responses,
       count(nps_score) AS nps_answers,
       count(*) FILTER (WHERE nps_score >= 9) AS promoters,
       count(*) FILTER (WHERE nps_score <= 6) AS detractors,
       round(100.0 * (count(*) FILTER (WHERE nps_score >= 9) - count(*) FILTER (WHERE nps_score <= 6))
             / nullif(count(nps_score), 0), 1) AS nps,
       count(satisfaction_score) AS satisfaction_answers,
       round(avg(satisfaction_score), 2) AS satisfaction_mean,
       round(count(*) FILTER (WHERE satisfaction_score >= 4)::numeric / nullif(count(satisfaction_score), 0), 4)
           AS satisfied_share
FROM mart.survey_invitation_outcome
WHERE kind = 'completer_sample'
GROUP BY GROUPING SETS ((sample_week), (sample_week, course_id));
COMMENT ON VIEW mart.survey_scores_weekly IS
    'NPS and satisfaction of the weekly completer samples, per sample week: all courses (all_courses) and per course.';
REVOKE ALL ON mart.survey_scores_weekly FROM PUBLIC;
GRANT SELECT ON mart.survey_scores_weekly TO cdp_loader, cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
