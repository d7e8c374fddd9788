-- The audit trail's row changes to the donation tables in a period (one event per statement and table, its
-- row images before and after), each with the correction it applied when one did: a correction's
-- 'correction.applied' event is written in the same transaction as the row change it causes.
-- Parameters: tables (text[]), period_start, period_end (timestamptz).
SELECT e.seq, e.event_id, e.occurred_at, e.action, e.entity_type, e.db_role, e.session_role, e.actor, e.dag_id,
       e.run_id, e.task_id, e.before, e.after,
       applied.details ->> 'correction_id' AS correction_id,
       applied.details ->> 'requested_by' AS requested_by,
       applied.details ->> 'approved_by' AS approved_by
FROM audit.audit_events e
LEFT JOIN LATERAL (
    SELECT c.details FROM audit.audit_events c
    WHERE c.txid = e.txid AND c.action = 'correction.applied' AND c.entity_type = e.entity_type
    ORDER BY c.event_id LIMIT 1
) AS applied ON true
WHERE e.entity_type = ANY (%(tables)s)
  AND e.action IN ('insert', 'update', 'delete')
  AND e.occurred_at >= %(period_start)s AND e.occurred_at < %(period_end)s
ORDER BY e.occurred_at, e.event_id;
