-- The last finished reconciliation run (any month), and its totals per class and currency.
SELECT run_id, month, status, gifts, unexplained_count, started_at, finished_at
FROM ops.reconciliation_run
WHERE status <> 'running'
ORDER BY finished_at DESC NULLS LAST, run_id DESC
LIMIT 1;
