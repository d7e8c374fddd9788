-- The reviewed donation corrections touched in a period: requested, decided or applied in it. Who asked and
-- who decided are the database logins (ops.request/approve/reject_donation_correction record session_user).
-- Parameters: period_start, period_end (timestamptz).
SELECT correction_id, donation_id::text AS donation_id, financial_transaction_id, status,
       requested_by, requested_role, requested_at, reason, before, after,
       decided_by, decided_role, decided_at, decision_note, applied_at
FROM ops.donation_correction
WHERE (requested_at >= %(period_start)s AND requested_at < %(period_end)s)
   OR (decided_at >= %(period_start)s AND decided_at < %(period_end)s)
   OR (applied_at >= %(period_start)s AND applied_at < %(period_end)s)
ORDER BY correction_id;
