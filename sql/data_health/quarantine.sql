-- Records held back and not yet resolved, per stream, with the most common reason class: the kind of
-- problem, never the record's values (ops.reason_class, sql/definitions/ops/reason_class.sql).
WITH open AS (
    SELECT source, stream, quarantined_at, ops.reason_class(reason) AS reason_class
    FROM ops.quarantine
    WHERE resolved_at IS NULL
)
SELECT source, stream, count(*) AS open_count,
       mode() WITHIN GROUP (ORDER BY reason_class) AS top_reason,
       min(quarantined_at) AS oldest_at
FROM open
GROUP BY source, stream
ORDER BY open_count DESC, source, stream;
