-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0015_support_tickets.sql.

-- KPI marts (month, numerator, denominator, value). From the Zendesk tickets since 0015 (0008 created an
-- empty placeholder with the same name and columns).
CREATE OR REPLACE VIEW mart.kpi_referral_support_tickets_monthly AS
SELECT date_trunc('month', t.opened_at AT TIME ZONE 'UTC')::date AS month,
       (count(*) FILTER (WHERE t.about_referral))::numeric AS numerator,
       count(*)::numeric AS denominator,
       CASE WHEN count(*) > 0 THEN (count(*) FILTER (WHERE t.about_referral))::numeric / count(*) END AS value
FROM core.support_ticket t
WHERE t.source = 'zendesk' AND t.status <> 'deleted' AND t.deleted_at IS NULL  -- deleted at Zendesk (0024)
GROUP BY 1;
COMMENT ON VIEW mart.kpi_referral_support_tickets_monthly IS
    'Support tickets linked to referrals (ratio): tickets about a referral (tag referral or the Referral field filled in) ÷ all support tickets opened that month (Zendesk, deleted tickets left out); numerator = the count of referral tickets.';
REVOKE ALL ON mart.kpi_referral_support_tickets_monthly FROM PUBLIC;
GRANT SELECT ON mart.kpi_referral_support_tickets_monthly TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
