-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Added for revision 0030 (non-response; issue 18).

-- Who answered against who was asked, per survey, sample week, course and cohort (enrolment month): a course
-- or cohort that answers far less than the rest skews the scores, and this is where it shows.
CREATE OR REPLACE VIEW mart.survey_nonresponse AS
SELECT survey_key, sample_week, tool, course_id, cohort, count(*) AS invited,
       count(*) FILTER (WHERE responded) AS responded, count(*) FILTER (WHERE NOT responded) AS not_responded,
       round(count(*) FILTER (WHERE responded)::numeric / count(*), 4) AS response_rate
FROM mart.survey_invitation_outcome
GROUP BY survey_key, sample_week, tool, course_id, cohort;
COMMENT ON VIEW mart.survey_nonresponse IS
    'Invited, answered and not answered per survey, sample week, tool, course and cohort (enrolment month).';
REVOKE ALL ON mart.survey_nonresponse FROM PUBLIC;
GRANT SELECT ON mart.survey_nonresponse TO cdp_loader, cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
