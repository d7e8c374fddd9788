-- Count diffs, financial reconciliation, donation corrections and data-alert history.
-- (placeholder: filled in by the issue that owns this revision)
SELECT 1;
