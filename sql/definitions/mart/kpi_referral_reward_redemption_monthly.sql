-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0008_referral_migration.sql.

-- KPI marts (month, numerator, denominator, value).
CREATE OR REPLACE VIEW mart.kpi_referral_reward_redemption_monthly AS
SELECT date_trunc('month', w.issued_at AT TIME ZONE 'UTC')::date AS month,
       sum(extract(epoch FROM f.fulfilled_at - w.issued_at) / 86400)::numeric AS numerator,
       count(*)::numeric AS denominator,
       (sum(extract(epoch FROM f.fulfilled_at - w.issued_at) / 86400) / count(*))::numeric AS value
FROM core.reward w
JOIN ops.reward_fulfilment f USING (reward_id)
WHERE f.fulfilled_at IS NOT NULL AND w.issued_at IS NOT NULL
GROUP BY 1;
COMMENT ON VIEW mart.kpi_referral_reward_redemption_monthly IS
    'Average reward redemption time (days from the reward being unlocked on the platform to its fulfilment, by unlock month).';
REVOKE ALL ON mart.kpi_referral_reward_redemption_monthly FROM PUBLIC;
GRANT SELECT ON mart.kpi_referral_reward_redemption_monthly TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
