-- 0016 webhook intake limits (issue 15, item 8: "unauthenticated webhook posts fill the database", and "a
-- valid signed webhook with a \u0000 is answered 503 and kept nowhere").
--
-- Rejections: a request the intake refuses (unsigned, wrong content type, oversized, stale, unknown form)
-- no longer keeps its body. It adds one to a counter row per source, hour, status and reason (an upsert, so
-- a flood of unsigned posts writes O(1) rows per source/reason/hour), and only the first few requests of each
-- counter row (cdp.webhooks.intake.KEEP_REJECTIONS_PER_HOUR) also get a detail row in ops.webhook_rejection,
-- with their size and sha256 but never their body. Unknown source names are refused without any row.
--
-- Undeliverable: a delivery whose signature verifies but whose body PostgreSQL cannot hold as JSON (a
-- \u0000 in a string, invalid JSON, not UTF-8, NaN, a lone surrogate) is kept here byte for byte and
-- answered 2xx, so the sender stops retrying and an operator sees it (the `webhook_undeliverable` data
-- alert of cdp_webhook_intake). A retry of the same bytes adds to `deliveries`, not a row. An erasure
-- (privacy.erase_person, in sql/definitions/) blanks a kept body that holds the person's email.

CREATE TABLE ops.webhook_rejection_count (
    source       text NOT NULL,             -- a configured source only: unknown names are never stored
    hour         timestamptz NOT NULL,      -- the hour the requests came in (UTC, truncated)
    status_code  integer NOT NULL CHECK (status_code BETWEEN 400 AND 499),
    reason       text NOT NULL,             -- a stable reason code (cdp.webhooks.intake), not free text
    requests     bigint NOT NULL DEFAULT 1,
    body_bytes   bigint NOT NULL DEFAULT 0, -- the sizes of the refused bodies, summed
    first_at     timestamptz NOT NULL DEFAULT now(),
    last_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, hour, status_code, reason)
);
COMMENT ON TABLE ops.webhook_rejection_count IS
    'Refused webhook requests counted per source, hour, status and reason; bodies are never kept.';
COMMENT ON COLUMN ops.webhook_rejection.body IS
    'Not written since 0016 (a rejected body is never kept); older rows may still hold one.';

CREATE TABLE ops.webhook_undeliverable (
    undeliverable_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source           text NOT NULL,
    reason           text NOT NULL,         -- why the body cannot be held as JSON (never quotes the body)
    content_type     text,
    body             bytea,                 -- the bytes exactly as received and signed: personal data;
                                            -- NULL once an erasure found the person's email in them
    body_bytes       integer NOT NULL,
    body_sha256      text NOT NULL,
    deliveries       integer NOT NULL DEFAULT 1,  -- the sender's retries of the same bytes
    received_at      timestamptz NOT NULL DEFAULT now(),
    last_received_at timestamptz NOT NULL DEFAULT now(),
    resolved_at      timestamptz,           -- set by an operator once handled (re-sent, asked the sender, …)
    resolved_by      text,
    resolution       text,
    UNIQUE (source, body_sha256)
);
CREATE INDEX webhook_undeliverable_open ON ops.webhook_undeliverable (source, received_at) WHERE resolved_at IS NULL;
COMMENT ON TABLE ops.webhook_undeliverable IS
    'Signed webhook deliveries whose body PostgreSQL cannot hold as JSON, kept byte for byte until resolved.';

REVOKE ALL ON ops.webhook_rejection_count, ops.webhook_undeliverable FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON ops.webhook_rejection_count, ops.webhook_undeliverable TO cdp_loader;
GRANT SELECT ON ops.webhook_rejection_count TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
-- The kept bodies hold what people typed into a form: only admin reads them and marks them resolved.
GRANT SELECT ON ops.webhook_undeliverable TO cdp_admin;
GRANT UPDATE (resolved_at, resolved_by, resolution) ON ops.webhook_undeliverable TO cdp_admin;
