-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0001_foundation.sql.

-- The one definition of what a row's hash covers; `cdp audit verify` hashes the same text independently.
-- Times are hashed as epoch microseconds so that no session time zone can change the text.
CREATE OR REPLACE FUNCTION audit.canonical_text(e audit.audit_events) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT jsonb_build_array(
        e.seq, (extract(epoch FROM e.occurred_at) * 1000000)::bigint, e.db_role, e.session_role, e.actor,
        e.action, e.entity_type, e.entity_id, e.before, e.after, e.details, e.dag_id, e.run_id, e.task_id, e.txid
    )::text
$$;
-- No grants: PostgreSQL's default (EXECUTE for PUBLIC).

CREATE OR REPLACE FUNCTION audit.chain_event() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    last_seq  bigint;
    last_hash text;
BEGIN
    -- One writer at a time until commit: the only way to get one gap-free order under concurrency.
    PERFORM pg_advisory_xact_lock(7402113001);
    SELECT seq, hash INTO last_seq, last_hash FROM audit.audit_events ORDER BY seq DESC LIMIT 1;
    NEW.seq := coalesce(last_seq, 0) + 1;
    NEW.prev_hash := coalesce(last_hash, repeat('0', 64));
    NEW.occurred_at := clock_timestamp();
    NEW.db_role := current_user;
    NEW.session_role := session_user;
    NEW.txid := txid_current();
    NEW.details := coalesce(NEW.details, '{}'::jsonb);
    NEW.actor := coalesce(NEW.actor, nullif(current_setting('cdp.actor', true), ''));
    NEW.dag_id := coalesce(NEW.dag_id, nullif(current_setting('cdp.dag_id', true), ''));
    NEW.run_id := coalesce(NEW.run_id, nullif(current_setting('cdp.run_id', true), ''));
    NEW.task_id := coalesce(NEW.task_id, nullif(current_setting('cdp.task_id', true), ''));
    NEW.hash := encode(sha256(convert_to(NEW.prev_hash || audit.canonical_text(NEW), 'UTF8')), 'hex');
    RETURN NEW;
END
$$;
-- No grants: PostgreSQL's default (EXECUTE for PUBLIC).

CREATE OR REPLACE FUNCTION audit.refuse_change() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'audit.audit_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- No grants: PostgreSQL's default (EXECUTE for PUBLIC).

-- Application events (imports, merges, corrections, consent changes) go through this function.
CREATE OR REPLACE FUNCTION audit.record_event(
    p_action text, p_entity_type text, p_entity_id text DEFAULT NULL,
    p_details jsonb DEFAULT '{}'::jsonb, p_before jsonb DEFAULT NULL, p_after jsonb DEFAULT NULL
) RETURNS bigint
    LANGUAGE sql
AS $$
    INSERT INTO audit.audit_events (seq, occurred_at, db_role, session_role, action, entity_type, entity_id,
                                    before, after, details, txid, prev_hash, hash)
    VALUES (0, now(), '', '', p_action, p_entity_type, p_entity_id, p_before, p_after,
            coalesce(p_details, '{}'::jsonb), 0, '', '')
    RETURNING seq
$$;
-- No grants: PostgreSQL's default (EXECUTE for PUBLIC).
