-- 0027 the dedupe DAG's own role (issue 15: "every process connects as its own role ... each DAG family").
--
-- cdp_dedupe is what `cdp_dedupe` (the nightly identity resolution; cdp.identity.runs) connects as, through
-- the Airflow connection warehouse_dedupe. A run reads the people it compares (the compared columns of
-- core.person and their household's address, their source identities), scores pairs into its own tables,
-- queues pairs for review, merges certain matches and writes its run report. It reads no consent, no
-- donation, no raw payload, no survey answer, nothing of finance, and writes no audit event itself.
--
-- A merge re-points every row of core that points to the absorbed person (consent statements, donations,
-- support tickets, ...): that happens inside ops.merge_people (sql/definitions/ops/merge_people.sql), a
-- SECURITY DEFINER function of cdp_definer that moves only the person column, only from the absorbed person
-- to the survivor, records every moved row and the merge's audit event. cdp_dedupe executes it and holds no
-- right on the tables it moves rows in. The donation guard (core.guard_donation_money) lets exactly that
-- move through: a donation's donor changed by cdp_definer from the absorbed person of a live merge to its
-- survivor, nothing else changed. Undoing a merge (`cdp dedupe unmerge`) stays with the operator.
--
-- Logins of the role are made like the other process logins (cdp.warehouse.embedded.ensure_login: the
-- embedded server's process logins, `cdp warehouse logins`), never by privacy.create_login: no person logs
-- in as a DAG.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cdp_dedupe') THEN
        CREATE ROLE cdp_dedupe NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA core, ops, audit TO cdp_dedupe;

-- What a run compares (sql/dedupe/people_to_compare.sql, runs.start_run, runs._person_facts,
-- sql/dedupe/merged_members.sql, ops.person_root): who, the compared fields, when created or changed.
GRANT SELECT (person_id, given_name, family_name, date_of_birth, email, email_normalized, phone, phone_e164,
              household_id, is_learner, is_donor, merged_into, created_at, updated_at)
    ON core.person TO cdp_dedupe;
-- core.person is under row-level security: every person is compared (read only; merges go through
-- ops.merge_people).
CREATE POLICY dedupe_reads_all_rows ON core.person FOR SELECT TO cdp_dedupe USING (true);
GRANT SELECT (household_id, street, locality, postcode, region) ON core.household TO cdp_dedupe;
-- The survivor among records of one load is chosen by source identity (runs._person_facts, guards).
GRANT SELECT (person_id, source, source_record_id) ON core.person_source_id TO cdp_dedupe;

-- The run report: start_run inserts it (and deletes a failed run's row to start it afresh, its scores
-- cascade), the steps read it whole (finish_run) and update the counts, status and details.
GRANT SELECT, DELETE ON ops.dedupe_run TO cdp_dedupe;
GRANT INSERT (run_id, mode, changed_since, people_total, people_compared, shards) ON ops.dedupe_run TO cdp_dedupe;
GRANT UPDATE (status, finished_at, candidate_pairs, matches, possible_matches, merged, queued, rejected, guarded,
              duplicate_rate, baseline_rate, rate_spike, details) ON ops.dedupe_run TO cdp_dedupe;
-- A shard's scored pairs (score_shard: delete the shard's earlier rows, COPY the new ones; apply_run reads them).
GRANT SELECT, DELETE ON ops.identity_pair_score TO cdp_dedupe;
GRANT INSERT (run_id, person_low, person_high, shard, score, match_weight, class, guard, levels)
    ON ops.identity_pair_score TO cdp_dedupe;
-- The review history: known pairs and their status (apply_run), new pairs queued and known ones re-scored
-- (sql/dedupe/upsert_pair.sql), a pair's status and guard set (runs._set_status).
-- (ON CONFLICT DO UPDATE reads the excluded values of the columns it sets: last_run_id ... levels.)
GRANT SELECT (pair_id, person_low, person_high, last_run_id, score, match_weight, class, guard, levels, status,
              auto_merge_allowed) ON ops.identity_pair TO cdp_dedupe;
GRANT INSERT (person_low, person_high, first_run_id, last_run_id, score, match_weight, class, guard, levels, status)
    ON ops.identity_pair TO cdp_dedupe;
GRANT UPDATE (last_run_id, score, match_weight, class, levels, status, guard, updated_at) ON ops.identity_pair
    TO cdp_dedupe;
-- Reviewers' decisions are respected (runs._rejections); who decided is not read.
GRANT SELECT (person_low, person_high, decision) ON ops.identity_decision TO cdp_dedupe;
-- The duplicate-rate alert sent once and cleared once (cdp.quality.data_alerts.alert_once, scope dedupe_spike:).
-- (Its upsert reads the excluded values of the columns it sets, and times_seen, last_sent_at.)
GRANT SELECT (alert_key, fingerprint, active, summary, last_run_id, times_seen, last_sent_at) ON ops.alert_state
    TO cdp_dedupe;
GRANT INSERT (alert_key, fingerprint, summary, last_sent_at, last_run_id) ON ops.alert_state TO cdp_dedupe;
GRANT UPDATE (fingerprint, active, summary, last_seen, last_run_id, times_seen, last_sent_at) ON ops.alert_state
    TO cdp_dedupe;

-- A scheduled run skips while no sync has landed every stream (cdp.runtime.assets.skip_before_first_complete_sync,
-- each task's pre_execute): which sync runs landed which streams.
GRANT SELECT (run_id, source, stream) ON ops.sync_run TO cdp_dedupe;

-- The audit trail: the run's event through audit.record_event (finish_run; merges record theirs inside
-- ops.merge_people), and the head anchored after every task (cdp.runtime.anchor: audit.seal, then the head's
-- seq and hash; no event's content).
GRANT EXECUTE ON FUNCTION audit.record_event(text, text, text, jsonb, jsonb, jsonb) TO cdp_dedupe;
-- (EXECUTE on audit.seal(), a definition only, is granted in sql/definitions/audit/audit_events.sql.)
GRANT SELECT (seq, hash) ON audit.audit_events TO cdp_dedupe;

-- ---------------------------------------------------------------------------------------------------------
-- ops.merge_people runs as cdp_definer: the merge's own records, and the person column of every table that
-- points to core.person (it already reads every table since 0017).
-- ---------------------------------------------------------------------------------------------------------
GRANT INSERT (run_id, pair_id, survivor_id, absorbed_id, reason, score, merged_by, survivor_before, absorbed_before)
    ON ops.identity_merge TO cdp_definer;
GRANT INSERT (merge_id, table_name, column_name, row_key, old_person_id, new_person_id)
    ON ops.identity_merge_move TO cdp_definer;
DO $$
DECLARE reference record;
BEGIN
    FOR reference IN
        SELECT c.conrelid::regclass AS target, a.attname AS column_name
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        JOIN pg_class r ON r.oid = c.conrelid
        WHERE c.contype = 'f' AND c.confrelid = 'core.person'::regclass
          AND r.relnamespace = 'core'::regnamespace AND array_length(c.conkey, 1) = 1
    LOOP
        EXECUTE format('GRANT UPDATE (%I) ON %s TO cdp_definer', reference.column_name, reference.target);
    END LOOP;
END
$$;
