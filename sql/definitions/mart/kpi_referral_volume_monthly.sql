-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0008_referral_migration.sql.

-- KPI marts (month, numerator, denominator, value).
CREATE OR REPLACE VIEW mart.kpi_referral_volume_monthly AS
SELECT date_trunc('month', r.signed_up_at AT TIME ZONE 'UTC')::date AS month,
       count(*)::numeric AS numerator,
       1::numeric AS denominator,
       count(*)::numeric AS value
FROM core.referral r
WHERE r.source = 'referralhero' AND r.referrer_source_id IS NOT NULL AND r.signed_up_at IS NOT NULL
  AND r.deleted_at IS NULL  -- a subscriber deleted at ReferralHero no longer counts (revision 0024)
GROUP BY 1;
COMMENT ON VIEW mart.kpi_referral_volume_monthly IS
    'Referral volume (count of sign-ups that came through a referral link, by sign-up month; value = numerator, denominator 1).';
REVOKE ALL ON mart.kpi_referral_volume_monthly FROM PUBLIC;
GRANT SELECT ON mart.kpi_referral_volume_monthly TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
