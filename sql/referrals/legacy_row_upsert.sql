-- One parsed row of the legacy referral spreadsheet into ops.referral_legacy, by its legacy_ref. A row
-- re-imported unchanged is left alone (the WHERE below), so a re-run of the same file changes nothing and
-- keeps the run that first imported it; duplicate_of is set afterwards, once every row exists.
-- Parameters: the parsed row's fields, sha (the file's sha256), number (its row number), run (the run id).
INSERT INTO ops.referral_legacy (legacy_ref, file_sha256, row_number, referrer_name, referrer_email,
                                 referred_name, referred_email, referred_on, reward_given, duplicate_of,
                                 imported_run_id)
VALUES (%(legacy_ref)s, %(sha)s, %(number)s, %(referrer_name)s, %(referrer_email)s,
        %(referred_name)s, %(referred_email)s, %(referred_on)s, %(reward_given)s, NULL, %(run)s)
ON CONFLICT (legacy_ref) DO UPDATE
SET file_sha256 = excluded.file_sha256, row_number = excluded.row_number,
    referrer_name = excluded.referrer_name, referrer_email = excluded.referrer_email,
    referred_name = excluded.referred_name, referred_email = excluded.referred_email,
    referred_on = excluded.referred_on, reward_given = excluded.reward_given,
    imported_run_id = excluded.imported_run_id, imported_at = now()
WHERE (ops.referral_legacy.referrer_name, ops.referral_legacy.referrer_email,
       ops.referral_legacy.referred_name, ops.referral_legacy.referred_email,
       ops.referral_legacy.referred_on, ops.referral_legacy.reward_given)
      IS DISTINCT FROM (excluded.referrer_name, excluded.referrer_email, excluded.referred_name,
                        excluded.referred_email, excluded.referred_on, excluded.reward_given)
