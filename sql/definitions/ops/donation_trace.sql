-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0004_quality_finance.sql.

-- Where a gift came from and what it funded: its donor, the donor's learning, the referrals they made.
CREATE OR REPLACE VIEW ops.donation_trace AS
SELECT d.donation_id, d.financial_transaction_id, d.person_id, d.campaign, p.is_learner,
       (SELECT count(*) FROM core.enrollment e WHERE e.person_id = d.person_id) AS enrollments,
       (SELECT count(*) FROM core.course_completion c WHERE c.person_id = d.person_id) AS completions,
       (SELECT count(*) FROM core.referral r WHERE r.referrer_person_id = d.person_id) AS referrals_made,
       (SELECT co.title FROM core.enrollment e JOIN core.course co USING (course_id)
         WHERE e.person_id = d.person_id ORDER BY e.enrolled_at DESC LIMIT 1) AS latest_course
FROM core.donation d
LEFT JOIN core.person p ON p.person_id = d.person_id;
REVOKE ALL ON ops.donation_trace FROM PUBLIC;
GRANT SELECT ON ops.donation_trace TO cdp_editor, cdp_admin, cdp_finance, cdp_loader, cdp_reconcile;
