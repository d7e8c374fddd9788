-- Streams with at least the configured number of records rejected since %(since)s, still unresolved; the top
-- reason as its class, so the Slack alert never quotes a record's value (ops.reason_class).
WITH threshold AS (
    SELECT coalesce((SELECT min_count FROM ops.alert_threshold WHERE alert_kind = 'quarantine'), 10) AS min_count
)
SELECT q.source, q.stream,
       count(*) AS open_count,
       count(*) FILTER (WHERE q.quarantined_at >= %(since)s) AS new_count,
       mode() WITHIN GROUP (ORDER BY ops.reason_class(q.reason)) AS top_reason
FROM ops.quarantine q
WHERE q.resolved_at IS NULL
GROUP BY q.source, q.stream
HAVING count(*) FILTER (WHERE q.quarantined_at >= %(since)s) >= (SELECT min_count FROM threshold)
ORDER BY q.source, q.stream;
