-- 0019 process roles (issue 15, item 9: "the pipeline and the webhook intake connect as the superuser").
--
-- Every process logs in as its own user, a member of one application role; the superuser (the database's
-- owner) is for migrations only. The pipeline's login is a member of cdp_loader; the CLI's is the operator's
-- own login (privacy.create_login); the webhook intake's is a member of cdp_webhook, created here: it is
-- served to the internet, so it may only add what a delivery brings (the event claim and its raw record, the
-- rejection counters and details, an undeliverable body) and read back the few columns its statements
-- return. It reads no personal data, updates no row it did not count, deletes nothing and writes no audit
-- event. The logins themselves are made by `cdp warehouse logins` (compose's airflow-init) or, for the
-- embedded server, by cdp.warehouse.process_logins: cluster-wide, with passwords from the deployment.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cdp_webhook') THEN
        CREATE ROLE cdp_webhook NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA raw, ops TO cdp_webhook;

-- cdp.webhooks.intake.LAND: the claim (ON CONFLICT DO NOTHING needs no SELECT) and the raw record.
GRANT INSERT (source, event_id, form_id, stream, record_id, event_time) ON ops.webhook_event TO cdp_webhook;
GRANT SELECT (source, event_id) ON ops.webhook_event TO cdp_webhook;  -- RETURNING source, event_id
GRANT INSERT (source, stream, source_record_id, run_id, payload) ON raw.records TO cdp_webhook;
GRANT SELECT (raw_id) ON raw.records TO cdp_webhook;                  -- RETURNING raw_id

-- cdp.webhooks.intake.REJECT: the counter upsert and at most a few detail rows (never a body).
GRANT INSERT (source, hour, status_code, reason, body_bytes) ON ops.webhook_rejection_count TO cdp_webhook;
GRANT SELECT (source, hour, status_code, reason, requests, body_bytes) ON ops.webhook_rejection_count TO cdp_webhook;
GRANT UPDATE (requests, body_bytes, last_at) ON ops.webhook_rejection_count TO cdp_webhook;
GRANT INSERT (source, status_code, reason, content_type, body_bytes, body_sha256) ON ops.webhook_rejection
    TO cdp_webhook;

-- cdp.webhooks.intake.KEEP: an undeliverable signed body, a retry of the same bytes counted.
GRANT INSERT (source, reason, content_type, body, body_bytes, body_sha256) ON ops.webhook_undeliverable
    TO cdp_webhook;
GRANT SELECT (undeliverable_id, deliveries, source, body_sha256) ON ops.webhook_undeliverable TO cdp_webhook;
GRANT UPDATE (deliveries, last_received_at) ON ops.webhook_undeliverable TO cdp_webhook;
