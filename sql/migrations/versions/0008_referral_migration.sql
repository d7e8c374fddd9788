-- 0008 referral program migration (issue 7): moving the referral program off its spreadsheet onto ReferralHero.
-- Only ops tables and mart views: the legacy rows stay operational evidence for the parallel run, and the
-- platform's referrals and rewards already live in core.referral / core.reward (tracked since 0001).
--
-- History: the views and functions below are as this revision made them. Today's definition of each is
-- in sql/definitions/, which `cdp migrate` re-applies after the revisions (sql/README.md).

-- The legacy spreadsheet, parsed. Every row as received is in raw.records (source 'legacy_referrals', stream
-- 'spreadsheet'); a row that cannot be parsed is in ops.quarantine with its reason instead of here.
CREATE TABLE ops.referral_legacy (
    legacy_ref          text PRIMARY KEY,     -- the sheet's own "Ref" column
    file_sha256         text NOT NULL,
    row_number          integer NOT NULL,     -- 1-based data row in the file (the header is row 0)
    referrer_name       text NOT NULL,
    referrer_email      text NOT NULL,
    referred_name       text NOT NULL,
    referred_email      text NOT NULL,
    referred_on         date NOT NULL,
    reward_given        text,
    duplicate_of        text REFERENCES ops.referral_legacy,  -- an earlier row with the same referral
    imported_run_id     text NOT NULL,
    imported_at         timestamptz NOT NULL DEFAULT now()
);

-- The pilot: a deterministic, stratified share of active learners (see cdp.referrals.pilot).
CREATE TABLE ops.referral_pilot (
    person_id    uuid PRIMARY KEY REFERENCES core.person,
    stratum      text NOT NULL,               -- country|age band|cohort
    as_of        date NOT NULL,
    chosen_run_id text NOT NULL,
    chosen_at    timestamptz NOT NULL DEFAULT now()
);

-- The parallel run: one row per referral on which legacy tracking and the platform disagree.
CREATE TABLE ops.referral_discrepancy (
    referral_key              text PRIMARY KEY,  -- the platform subscriber id, or legacy:<Ref> when only the sheet has it
    kind                      text NOT NULL CHECK (kind IN ('attributed_differently', 'missing_on_platform',
                                                            'missing_in_legacy')),
    legacy_ref                text,
    platform_subscriber_id    text,
    legacy_referrer_id        text,              -- the platform subscriber the sheet names as referrer
    platform_referrer_id      text,              -- the platform's referred_by
    referred_on               date,
    in_pilot                  boolean NOT NULL DEFAULT false,
    first_found_run_id        text NOT NULL,
    first_found_at            timestamptz NOT NULL DEFAULT now(),
    resolved_at               timestamptz,       -- set when a later run no longer finds it
    resolved_run_id           text
);

-- Reward fulfilment: one row per earned reward, keyed by its idempotency key, so a reward is fulfilled at
-- most once across retries and re-runs. queued_manual is the fallback queue people work from while the
-- platform is down; the next run that reaches the platform drains it.
CREATE TABLE ops.reward_fulfilment (
    idempotency_key   text PRIMARY KEY,          -- reward-fulfilment:<core.reward source_record_id>
    reward_id         uuid NOT NULL UNIQUE REFERENCES core.reward,
    subscriber_id     text NOT NULL,
    platform_reward_id text NOT NULL,
    status            text NOT NULL CHECK (status IN ('requested', 'fulfilled', 'queued_manual', 'fulfilled_manually')),
    attempts          integer NOT NULL DEFAULT 0,
    last_error        text,
    requested_at      timestamptz NOT NULL,
    queued_at         timestamptz,
    fulfilled_at      timestamptz,
    fulfilled_by      text,                       -- 'platform', 'platform (queue drained)' or the staff member
    run_id            text NOT NULL,
    CHECK ((status IN ('fulfilled', 'fulfilled_manually')) = (fulfilled_at IS NOT NULL))
);

CREATE VIEW ops.reward_fulfilment_queue AS
SELECT f.idempotency_key, f.reward_id, w.kind, f.subscriber_id, f.attempts, f.last_error, f.queued_at
FROM ops.reward_fulfilment f
JOIN core.reward w USING (reward_id)
WHERE f.status = 'queued_manual';
COMMENT ON VIEW ops.reward_fulfilment_queue IS
    'Rewards waiting for manual fulfilment because the referral platform was down; drained automatically on recovery.';

-- ---------------------------------------------------------------------------------------------------------
-- KPI marts (month, numerator, denominator, value).
-- ---------------------------------------------------------------------------------------------------------
CREATE VIEW mart.kpi_referral_conversion_monthly AS
SELECT date_trunc('month', r.signed_up_at AT TIME ZONE 'UTC')::date AS month,
       sum(r.people_referred)::numeric AS numerator,
       sum(r.clicks)::numeric AS denominator,
       CASE WHEN sum(r.clicks) > 0 THEN sum(r.people_referred)::numeric / sum(r.clicks) END AS value
FROM core.referral r
WHERE r.source = 'referralhero' AND r.signed_up_at IS NOT NULL AND r.clicks IS NOT NULL
GROUP BY 1;
COMMENT ON VIEW mart.kpi_referral_conversion_monthly IS
    'Referral conversion rate (ratio): sign-ups via referral links ÷ unique clicks on those links, for the links of subscribers who joined that month (ReferralHero counts per link).';

CREATE VIEW mart.kpi_referral_volume_monthly AS
SELECT date_trunc('month', r.signed_up_at AT TIME ZONE 'UTC')::date AS month,
       count(*)::numeric AS numerator,
       1::numeric AS denominator,
       count(*)::numeric AS value
FROM core.referral r
WHERE r.source = 'referralhero' AND r.referrer_source_id IS NOT NULL AND r.signed_up_at IS NOT NULL
GROUP BY 1;
COMMENT ON VIEW mart.kpi_referral_volume_monthly IS
    'Referral volume (count of sign-ups that came through a referral link, by sign-up month; value = numerator, denominator 1).';

CREATE VIEW mart.kpi_referral_reward_redemption_monthly AS
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

-- No support-ticket system feeds the warehouse yet: the view has the KPI's shape and no rows, so the data
-- health page shows it as "no data" rather than a made-up zero.
-- Superseded by 0015: today's definition is in sql/definitions/mart/kpi_referral_support_tickets_monthly.sql.
CREATE VIEW mart.kpi_referral_support_tickets_monthly AS
SELECT NULL::date AS month, NULL::numeric AS numerator, NULL::numeric AS denominator, NULL::numeric AS value
WHERE false;
COMMENT ON VIEW mart.kpi_referral_support_tickets_monthly IS
    'Support tickets linked to referrals (count): NO DATA — no support-ticket source is connected to the warehouse yet; this view stays empty until one is.';

-- ---------------------------------------------------------------------------------------------------------
-- Privileges, as for the other ops tables and marts.
-- ---------------------------------------------------------------------------------------------------------
REVOKE ALL ON ops.referral_legacy, ops.referral_pilot, ops.referral_discrepancy, ops.reward_fulfilment,
    ops.reward_fulfilment_queue FROM PUBLIC;
GRANT SELECT ON ops.referral_pilot, ops.referral_discrepancy, ops.reward_fulfilment, ops.reward_fulfilment_queue
    TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
-- The legacy rows hold names and emails as typed in the sheet: admin only, like raw.
GRANT SELECT ON ops.referral_legacy TO cdp_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON ops.referral_legacy, ops.referral_pilot, ops.referral_discrepancy,
    ops.reward_fulfilment TO cdp_loader;
GRANT SELECT ON ops.reward_fulfilment_queue TO cdp_loader;
-- Staff who fulfil a queued reward by hand mark it fulfilled_manually.
GRANT UPDATE (status, fulfilled_at, fulfilled_by) ON ops.reward_fulfilment TO cdp_editor, cdp_admin;

REVOKE ALL ON mart.kpi_referral_conversion_monthly, mart.kpi_referral_volume_monthly,
    mart.kpi_referral_reward_redemption_monthly, mart.kpi_referral_support_tickets_monthly FROM PUBLIC;
GRANT SELECT ON mart.kpi_referral_conversion_monthly, mart.kpi_referral_volume_monthly,
    mart.kpi_referral_reward_redemption_monthly, mart.kpi_referral_support_tickets_monthly
    TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
