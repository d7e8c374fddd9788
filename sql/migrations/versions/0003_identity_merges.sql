-- Identity resolution in the warehouse: reversible merges, the review queue, reviewer decisions, dedupe run reports.
-- (placeholder: filled in by the issue that owns this revision)
SELECT 1;
