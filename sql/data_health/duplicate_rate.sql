-- The recent dedupe runs' reports, oldest first (the chart reads left to right).
SELECT run_id, mode, status, started_at, finished_at, people_compared, candidate_pairs, merged, queued,
       duplicate_rate, baseline_rate, rate_spike
FROM (
    SELECT * FROM ops.dedupe_run ORDER BY started_at DESC LIMIT %(runs)s
) recent
ORDER BY started_at;
