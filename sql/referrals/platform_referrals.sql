-- The platform's side of the parallel run: every ReferralHero subscriber in core.referral, with the name and
-- email as ReferralHero last sent them (raw.records) to match the sheet's rows, who referred them, and whether
-- the subscriber is in the referral pilot.
SELECT r.source_record_id AS subscriber_id,
       r.referrer_source_id,
       r.signed_up_at,
       latest.payload ->> 'name' AS name,
       latest.payload ->> 'email' AS email,
       EXISTS (SELECT 1 FROM ops.referral_pilot p WHERE p.person_id = r.referred_person_id) AS in_pilot
FROM core.referral r
CROSS JOIN LATERAL (
    SELECT x.payload FROM raw.records x
    WHERE x.source = 'referralhero' AND x.stream = 'subscribers' AND x.source_record_id = r.source_record_id
    ORDER BY x.raw_id DESC LIMIT 1
) latest
WHERE r.source = 'referralhero';
