-- The reviewed program changes (a course put in a program, a program's funds and shares) touched in a period:
-- requested or decided in it. Who asked and who decided are the database logins (ops.request_program_change,
-- ops.approve_program_change / ops.reject_program_change record session_user).
-- Parameters: period_start, period_end (timestamptz).
SELECT change_id, kind, program, course_id::text AS course_id, funds, valid_from, status, reason,
       requested_by, requested_role, requested_at, decided_by, decided_role, decided_at, decision_note
FROM ops.program_change
WHERE (requested_at >= %(period_start)s AND requested_at < %(period_end)s)
   OR (decided_at >= %(period_start)s AND decided_at < %(period_end)s)
ORDER BY change_id;
