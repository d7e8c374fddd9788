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

-- One function, two triggers (sql/migrations/versions/0017_definer_owner_audit_seal.sql):
--   BEFORE INSERT stamps the event (time, roles, run, the claimed actor) and leaves it unsealed, taking no
--     lock, so a writer never waits for another writer's commit;
--   AFTER INSERT, deferred to commit (seal_at_commit), seals it into the chain through audit.seal_pending,
--     under an advisory lock it only tries: if another transaction holds it, the event stays unsealed
--     until the next commit or audit.seal() chains it. A writer can hold that lock open (SET CONSTRAINTS
--     ALL IMMEDIATE, then idle), but that only delays sealing; nobody's write waits for it.
-- db_role is the role the writer acts as (SET ROLE's, else the login) and session_role the login: the
-- real database identity beside the actor a session claims.
CREATE OR REPLACE FUNCTION audit.chain_event() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_WHEN = 'AFTER' THEN
        -- Already sealed by an earlier firing in this transaction (one firing seals them all)?
        IF NOT EXISTS (SELECT 1 FROM audit.audit_events e WHERE e.event_id = NEW.event_id AND e.hash IS NULL) THEN
            RETURN NULL;
        END IF;
        -- Under a snapshot taken before the lock, a committed head would be invisible: leave it to the next.
        IF pg_catalog.current_setting('transaction_isolation') = 'read committed'
           AND pg_catalog.pg_try_advisory_xact_lock(7402113001) THEN
            PERFORM audit.seal_pending();
        END IF;
        RETURN NULL;
    END IF;
    NEW.seq := NULL;
    NEW.prev_hash := NULL;
    NEW.hash := NULL;
    NEW.occurred_at := pg_catalog.clock_timestamp();
    NEW.db_role := CASE WHEN pg_catalog.current_setting('role') IN ('none', '') THEN session_user::text
                        ELSE pg_catalog.current_setting('role') END;
    NEW.session_role := session_user;
    NEW.txid := pg_catalog.txid_current();
    NEW.details := coalesce(NEW.details, '{}'::jsonb);
    NEW.actor := coalesce(NEW.actor, nullif(pg_catalog.current_setting('cdp.actor', true), ''));
    NEW.dag_id := coalesce(NEW.dag_id, nullif(pg_catalog.current_setting('cdp.dag_id', true), ''));
    NEW.run_id := coalesce(NEW.run_id, nullif(pg_catalog.current_setting('cdp.run_id', true), ''));
    NEW.task_id := coalesce(NEW.task_id, nullif(pg_catalog.current_setting('cdp.task_id', true), ''));
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION audit.chain_event() FROM PUBLIC;

-- Chains every unsealed event this transaction can see (its own, and committed ones), oldest first. The
-- caller holds the chain's advisory lock (audit.chain_event, audit.seal); not callable by anyone else.
CREATE OR REPLACE FUNCTION audit.seal_pending() RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    last_seq  bigint;
    last_hash text;
    pending   audit.audit_events;
    sealed    bigint := 0;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_locks l
                   WHERE l.locktype = 'advisory' AND l.pid = pg_catalog.pg_backend_pid() AND l.granted
                     AND l.objid::bigint = 7402113001::bigint % 4294967296
                     AND l.classid::bigint = 7402113001::bigint / 4294967296) THEN
        RAISE EXCEPTION 'audit.seal_pending needs the chain''s lock (call audit.seal())'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    SELECT e.seq, e.hash INTO last_seq, last_hash
    FROM audit.audit_events e WHERE e.seq IS NOT NULL ORDER BY e.seq DESC LIMIT 1;
    last_seq := coalesce(last_seq, 0);
    last_hash := coalesce(last_hash, pg_catalog.repeat('0', 64));
    FOR pending IN
        SELECT * FROM audit.audit_events e WHERE e.hash IS NULL ORDER BY e.event_id FOR UPDATE
    LOOP
        pending.seq := last_seq + 1;
        pending.prev_hash := last_hash;
        pending.hash := pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
            last_hash || audit.canonical_text(pending), 'UTF8')), 'hex');
        UPDATE audit.audit_events e SET seq = pending.seq, prev_hash = pending.prev_hash, hash = pending.hash
        WHERE e.event_id = pending.event_id;
        last_seq := pending.seq;
        last_hash := pending.hash;
        sealed := sealed + 1;
    END LOOP;
    RETURN sealed;
END
$$;
REVOKE ALL ON FUNCTION audit.seal_pending() FROM PUBLIC;
ALTER FUNCTION audit.seal_pending() OWNER TO cdp_definer;

-- Seals the committed events no commit could (the lock was busy then); `cdp audit verify` calls it first.
-- Returns how many it sealed, or NULL when another transaction holds the lock (it never waits).
CREATE OR REPLACE FUNCTION audit.seal() RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed'
       OR NOT pg_catalog.pg_try_advisory_xact_lock(7402113001) THEN
        RETURN NULL;
    END IF;
    RETURN audit.seal_pending();
END
$$;
REVOKE ALL ON FUNCTION audit.seal() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.seal() TO cdp_loader, cdp_viewer, cdp_editor, cdp_admin, cdp_finance,
    cdp_reconcile, cdp_dedupe, cdp_evidence,  -- the DAG families: the anchor after each task (0026, 0027, 0029,
    cdp_funder_report;                        -- 0032)
ALTER FUNCTION audit.seal() OWNER TO cdp_definer;

-- The one change let through: the seal (seq, prev_hash, hash from NULL to values) by the definer functions.
CREATE OR REPLACE FUNCTION audit.refuse_change() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND TG_TABLE_SCHEMA = 'audit' AND TG_TABLE_NAME = 'audit_events'
       AND current_user = 'cdp_definer'
       AND OLD.hash IS NULL AND OLD.seq IS NULL AND NEW.hash IS NOT NULL AND NEW.seq IS NOT NULL
       AND (to_jsonb(NEW) - ARRAY['seq', 'prev_hash', 'hash']) = (to_jsonb(OLD) - ARRAY['seq', 'prev_hash', 'hash'])
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit.audit_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- No grants: PostgreSQL's default (EXECUTE for PUBLIC).

-- Application events (imports, merges, corrections, consent changes) go through this function: no role may
-- insert into audit.audit_events itself (0017). The event carries the login and role that wrote it
-- (audit.chain_event) beside the actor the session claims; it returns the event's id (its seq comes at commit).
CREATE OR REPLACE FUNCTION audit.record_event(
    p_action text, p_entity_type text, p_entity_id text DEFAULT NULL,
    p_details jsonb DEFAULT '{}'::jsonb, p_before jsonb DEFAULT NULL, p_after jsonb DEFAULT NULL
) RETURNS bigint
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO audit.audit_events (occurred_at, db_role, session_role, action, entity_type, entity_id,
                                    before, after, details, txid)
    VALUES (pg_catalog.now(), '', '', p_action, p_entity_type, p_entity_id, p_before, p_after,
            coalesce(p_details, '{}'::jsonb), 0)
    RETURNING event_id
$$;
-- Staff roles and the pipeline record application events (attributed to their login); partners, outreach
-- and the webhook intake have nothing to record.
REVOKE ALL ON FUNCTION audit.record_event(text, text, text, jsonb, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.record_event(text, text, text, jsonb, jsonb, jsonb)
    TO cdp_loader, cdp_viewer, cdp_editor, cdp_admin, cdp_finance, cdp_login_admin,  -- create_login records
       cdp_reconcile, cdp_dedupe, cdp_evidence;  -- the DAG families' run events (revisions 0026, 0027, 0029)
