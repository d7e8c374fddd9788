-- Freshness of every synced stream: its watermark and its last successful sync (ops.sync_run rows are
-- written in the same transaction as the data, so a row there means the stream landed).
WITH last_run AS (
    SELECT DISTINCT ON (source, stream) source, stream, finished_at, rows_read, rows_upserted, rows_quarantined
    FROM ops.sync_run
    ORDER BY source, stream, finished_at DESC
)
SELECT coalesce(w.source, r.source) AS source,
       coalesce(w.stream, r.stream) AS stream,
       w.watermark,
       r.finished_at AS last_synced_at,
       r.rows_read AS last_rows_read,
       r.rows_upserted AS last_rows_upserted,
       r.rows_quarantined AS last_rows_quarantined,
       extract(epoch FROM (%(now)s::timestamptz - r.finished_at)) / 3600.0 AS hours_since_sync
FROM ops.sync_watermark w
FULL JOIN last_run r ON r.source = w.source AND r.stream = w.stream
ORDER BY 1, 2;
