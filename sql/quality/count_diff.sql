-- One stream's count diff for one window: what the source reported (counted by its own endpoint, passed in),
-- what landed in raw, what reached core, where any loss sits, and the command that repairs it. A record
-- deleted at the source since it reached core (deleted_count) is neither counted by the source nor a loss.
-- Parameters: run_id, source, stream, entity, core_table, key_source, cursor_field, window_start,
-- window_end, source_count.
WITH measured AS (
    SELECT m.raw_count, m.core_count, m.quarantined_count, m.deleted_count
    FROM ops.count_window(%(source)s, %(stream)s, %(core_table)s::regclass, %(key_source)s, %(cursor_field)s,
                          %(window_start)s, %(window_end)s) m
), threshold AS (
    SELECT coalesce(
        (SELECT t.max_variance FROM ops.count_diff_threshold t WHERE t.entity = %(source)s || '.' || %(stream)s),
        (SELECT t.max_variance FROM ops.count_diff_threshold t WHERE t.entity = '*'),
        0.05) AS max_variance
), diffed AS (
    SELECT %(source_count)s::bigint AS source_count, m.raw_count, m.core_count, m.quarantined_count,
           m.deleted_count,
           greatest(%(source_count)s::bigint - (m.raw_count - m.deleted_count), 0) AS never_fetched,
           m.raw_count - m.core_count - m.quarantined_count - m.deleted_count AS dropped,
           CASE WHEN greatest(%(source_count)s::bigint, m.core_count) = 0 THEN 0
                ELSE round(abs(%(source_count)s::bigint - m.core_count)::numeric
                           / greatest(%(source_count)s::bigint, m.core_count), 6) END AS variance,
           t.max_variance
    FROM measured m CROSS JOIN threshold t
), located AS (
    SELECT d.*,
           CASE
               WHEN d.source_count = 0 AND d.core_count = 0 THEN 'empty'
               -- A zero on one side never passes, whatever the threshold says.
               WHEN d.source_count = 0 OR d.core_count = 0 THEN 'alert'
               WHEN d.variance > d.max_variance THEN 'alert'
               ELSE 'ok'
           END AS status,
           CASE
               WHEN d.source_count < d.raw_count - d.deleted_count AND d.quarantined_count = 0 AND d.dropped = 0
                    THEN 'source_reports_fewer'
               WHEN (d.never_fetched > 0)::int + (d.quarantined_count > 0)::int + (d.dropped > 0)::int > 1 THEN 'mixed'
               WHEN d.never_fetched > 0 THEN 'never_fetched'
               WHEN d.quarantined_count > 0 THEN 'rejected'
               WHEN d.dropped > 0 THEN 'dropped'
               ELSE 'none'
           END AS loss_location
    FROM diffed d
), repaired AS (
    SELECT l.*,
           concat_ws(' ; ',
               CASE WHEN l.never_fetched > 0 THEN format(
                   '%%s never fetched: re-read the window from the source with `airflow backfill create --dag-id cdp_sync --from-date %%s --to-date %%s --reprocess-behavior completed` (if the source still hides them, raise it with the vendor)',
                   l.never_fetched, to_char(%(window_start)s::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS'),
                   to_char(%(window_end)s::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')) END,
               CASE WHEN l.quarantined_count > 0 THEN format(
                   '%%s rejected: see the reasons with `psql "$(cdp warehouse url)" -c "SELECT reason, count(*) FROM ops.quarantine WHERE source = ''%%s'' AND stream = ''%%s'' AND resolved_at IS NULL GROUP BY 1"`, fix the records at the source; the next sync re-reads them',
                   l.quarantined_count, %(source)s, %(stream)s) END,
               CASE WHEN l.dropped > 0 THEN format(
                   '%%s fetched but neither in core nor quarantined: a mapping fault in the stream''s sql/sync/ files; after the fix re-run `airflow backfill create --dag-id cdp_sync --from-date %%s --to-date %%s --reprocess-behavior completed`',
                   l.dropped, to_char(%(window_start)s::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS'),
                   to_char(%(window_end)s::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')) END,
               CASE WHEN l.loss_location = 'source_reports_fewer' THEN
                   'the source now reports fewer records than we hold for the window (records edited out of it since, or deleted at the source): nothing to repair unless it persists'
               END
           ) AS repair
    FROM located l
)
INSERT INTO ops.count_diff (run_id, source, stream, entity, window_start, window_end, source_count, raw_count,
                            core_count, quarantined_count, deleted_count, never_fetched, dropped, variance,
                            threshold, status, loss_location, repair)
SELECT %(run_id)s, %(source)s, %(stream)s, %(entity)s, %(window_start)s, %(window_end)s, r.source_count,
       r.raw_count, r.core_count, r.quarantined_count, r.deleted_count, r.never_fetched, r.dropped, r.variance,
       r.max_variance, r.status, r.loss_location, nullif(r.repair, '')
FROM repaired r
ON CONFLICT (run_id, source, stream, window_start, window_end) DO UPDATE
SET checked_at = now(), source_count = excluded.source_count, raw_count = excluded.raw_count,
    core_count = excluded.core_count, quarantined_count = excluded.quarantined_count,
    deleted_count = excluded.deleted_count, never_fetched = excluded.never_fetched, dropped = excluded.dropped,
    variance = excluded.variance,
    threshold = excluded.threshold, status = excluded.status, loss_location = excluded.loss_location,
    repair = excluded.repair
RETURNING *;
