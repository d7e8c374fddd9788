-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0008_referral_migration.sql.

-- KPI marts (month, numerator, denominator, value).
CREATE OR REPLACE VIEW mart.kpi_referral_conversion_monthly AS
SELECT date_trunc('month', r.signed_up_at AT TIME ZONE 'UTC')::date AS month,
       sum(r.people_referred)::numeric AS numerator,
       sum(r.clicks)::numeric AS denominator,
       CASE WHEN sum(r.clicks) > 0 THEN sum(r.people_referred)::numeric / sum(r.clicks) END AS value
FROM core.referral r
WHERE r.source = 'referralhero' AND r.signed_up_at IS NOT NULL AND r.clicks IS NOT NULL
  AND r.deleted_at IS NULL  -- a subscriber deleted at ReferralHero no longer counts (revision 0024)
GROUP BY 1;
COMMENT ON VIEW mart.kpi_referral_conversion_monthly IS
    'Referral conversion rate (ratio): sign-ups via referral links ÷ unique clicks on those links, for the links of subscribers who joined that month (ReferralHero counts per link).';
REVOKE ALL ON mart.kpi_referral_conversion_monthly FROM PUBLIC;
GRANT SELECT ON mart.kpi_referral_conversion_monthly TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
