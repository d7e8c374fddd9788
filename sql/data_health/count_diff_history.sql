-- Count-diff history: per window day, the streams checked, those that alerted, and source vs core totals.
-- Checks made in the last N days (parameter days); only each window's latest check counts (a re-run replaces).
WITH latest AS (
    SELECT DISTINCT ON (source, stream, window_start, window_end) *
    FROM ops.count_diff
    ORDER BY source, stream, window_start, window_end, checked_at DESC, count_diff_id DESC
)
SELECT window_start::date AS day,
       count(*) AS streams_checked,
       count(*) FILTER (WHERE status = 'alert') AS streams_alerting,
       sum(source_count) AS source_count,
       sum(raw_count) AS raw_count,
       sum(core_count) AS core_count,
       sum(quarantined_count) AS quarantined_count
FROM latest
WHERE checked_at >= %(now)s::timestamptz - make_interval(days => %(days)s)
GROUP BY 1
ORDER BY 1;
