-- One discrepancy the parallel run found, into ops.referral_discrepancy by its referral_key. Found again, it
-- is reopened if it had been resolved and updated if it changed; found again unchanged and still open, it
-- is left alone, so the run does not count it as new. first_found_run_id stays the first run's.
-- Parameters: the discrepancy's fields, run (the run id).
INSERT INTO ops.referral_discrepancy AS d (referral_key, kind, legacy_ref, platform_subscriber_id,
                                           legacy_referrer_id, platform_referrer_id, referred_on, in_pilot,
                                           first_found_run_id)
VALUES (%(referral_key)s, %(kind)s, %(legacy_ref)s, %(platform_subscriber_id)s,
        %(legacy_referrer_id)s, %(platform_referrer_id)s, %(referred_on)s, %(in_pilot)s, %(run)s)
ON CONFLICT (referral_key) DO UPDATE
SET kind = excluded.kind, legacy_ref = excluded.legacy_ref,
    platform_subscriber_id = excluded.platform_subscriber_id,
    legacy_referrer_id = excluded.legacy_referrer_id,
    platform_referrer_id = excluded.platform_referrer_id, referred_on = excluded.referred_on,
    in_pilot = excluded.in_pilot, resolved_at = NULL, resolved_run_id = NULL
WHERE (d.kind, d.legacy_ref, d.platform_subscriber_id, d.legacy_referrer_id,
       d.platform_referrer_id, d.referred_on, d.in_pilot, d.resolved_at IS NULL)
      IS DISTINCT FROM (excluded.kind, excluded.legacy_ref, excluded.platform_subscriber_id,
                        excluded.legacy_referrer_id, excluded.platform_referrer_id, excluded.referred_on,
                        excluded.in_pilot, true)
