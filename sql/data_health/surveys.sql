-- The weekly survey sample's last weeks (issue 18): invitations and answers over all tools, the response
-- rate, and the NPS and satisfaction of the answers (mart.survey_scores_weekly, all courses), newest first.
WITH rate AS (
    SELECT sample_week, sum(invited) AS invited, sum(responded) AS responded
    FROM mart.survey_response_rate_weekly
    GROUP BY sample_week
)
SELECT r.sample_week, r.invited, r.responded, round(r.responded::numeric / nullif(r.invited, 0), 4) AS response_rate,
       s.nps_answers, s.nps, s.satisfaction_answers, s.satisfaction_mean
FROM rate r
LEFT JOIN mart.survey_scores_weekly s ON s.sample_week = r.sample_week AND s.all_courses
ORDER BY r.sample_week DESC
LIMIT %(weeks)s;
