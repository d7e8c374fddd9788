-- Referrals the platform tracked and course sign-ups the LMS took in [since, until), and the last referral
-- tracked before until.
SELECT (SELECT count(*) FROM core.referral r
        WHERE r.source = 'referralhero' AND r.signed_up_at >= %(since)s AND r.signed_up_at < %(until)s) AS referrals,
       (SELECT count(*) FROM core.enrollment e
        WHERE e.enrolled_at >= %(since)s AND e.enrolled_at < %(until)s) AS signups,
       (SELECT max(r.signed_up_at) FROM core.referral r
        WHERE r.source = 'referralhero' AND r.signed_up_at < %(until)s) AS last_referral;
