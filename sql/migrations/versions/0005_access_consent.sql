-- Role privileges, row-level security for partners, consent rules and the outreach_eligible view.
-- (placeholder: filled in by the issue that owns this revision)
SELECT 1;
