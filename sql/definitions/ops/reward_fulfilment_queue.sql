-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0008_referral_migration.sql.

CREATE OR REPLACE VIEW ops.reward_fulfilment_queue AS
SELECT f.idempotency_key, f.reward_id, w.kind, f.subscriber_id, f.attempts, f.last_error, f.queued_at
FROM ops.reward_fulfilment f
JOIN core.reward w USING (reward_id)
WHERE f.status = 'queued_manual';
COMMENT ON VIEW ops.reward_fulfilment_queue IS
    'Rewards waiting for manual fulfilment because the referral platform was down; drained automatically on recovery.';
REVOKE ALL ON ops.reward_fulfilment_queue FROM PUBLIC;
GRANT SELECT ON ops.reward_fulfilment_queue TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance, cdp_loader;
