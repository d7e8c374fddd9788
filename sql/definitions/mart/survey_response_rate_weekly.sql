-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Added for revision 0030 (survey marts; issue 18).

-- Response rate per sample week and tool: invitations against invitations answered (linked by exact key).
CREATE OR REPLACE VIEW mart.survey_response_rate_weekly AS
SELECT sample_week, tool, count(*) AS invited, count(*) FILTER (WHERE responded) AS responded,
       round(count(*) FILTER (WHERE responded)::numeric / count(*), 4) AS response_rate
FROM mart.survey_invitation_outcome
GROUP BY sample_week, tool;
COMMENT ON VIEW mart.survey_response_rate_weekly IS
    'Survey invitations and how many were answered (linked by exact key), per sample week and tool.';
REVOKE ALL ON mart.survey_response_rate_weekly FROM PUBLIC;
GRANT SELECT ON mart.survey_response_rate_weekly TO cdp_loader, cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
