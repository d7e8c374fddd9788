-- Records held back and not yet resolved, per stream, with the most common reason.
SELECT source, stream, count(*) AS open_count,
       mode() WITHIN GROUP (ORDER BY reason) AS top_reason,
       min(quarantined_at) AS oldest_at
FROM ops.quarantine
WHERE resolved_at IS NULL
GROUP BY source, stream
ORDER BY open_count DESC, source, stream;
