-- The differing rows of one reconciliation run, traced to the donor's learning and referrals where known.
SELECT r.class, r.financial_transaction_id, r.currency, r.warehouse_minor, r.stripe_minor, r.ledger_minor,
       r.crm_minor, r.difference_minor, r.explained, r.explanation, r.person_id, r.campaign,
       t.is_learner, t.enrollments, t.completions, t.referrals_made, t.latest_course
FROM ops.reconciliation_result r
LEFT JOIN ops.donation_trace t ON t.donation_id = r.donation_id
WHERE r.run_id = %(run_id)s
ORDER BY r.explained, r.class, abs(r.difference_minor) DESC, r.financial_transaction_id
LIMIT %(limit)s;
