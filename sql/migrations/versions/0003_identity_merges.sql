-- 0003 identity merges: what the nightly dedupe (`cdp_dedupe`, `cdp dedupe run`) found, what staff decided
-- about it, and every merge with exactly what it moved, so that `cdp dedupe unmerge MERGE_ID` can put it back.
--
-- All of it is ops data: the people themselves stay in core.person (a merge only sets merged_into on the
-- absorbed person and re-points rows, both recorded by the audit triggers on core tables); the application
-- events (merge, unmerge, review decision) go to audit.audit_events through audit.record_event.
--
-- History: the views and functions below are as this revision made them. Today's definition of each is
-- in sql/definitions/, which `cdp migrate` re-applies after the revisions (sql/README.md).

-- ---------------------------------------------------------------------------------------------------------
-- One row per dedupe run: its plan, its counts, and the duplicate-rate alert.
-- ---------------------------------------------------------------------------------------------------------
CREATE TABLE ops.dedupe_run (
    run_id            text PRIMARY KEY,
    mode              text NOT NULL CHECK (mode IN ('incremental', 'full')),
    status            text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    -- Incremental runs compare people created or changed at or after this time against everyone.
    changed_since     timestamptz,
    people_total      bigint NOT NULL DEFAULT 0 CHECK (people_total >= 0),
    people_compared   bigint NOT NULL DEFAULT 0 CHECK (people_compared >= 0),
    shards            integer NOT NULL DEFAULT 1 CHECK (shards >= 1),
    candidate_pairs   bigint NOT NULL DEFAULT 0 CHECK (candidate_pairs >= 0),
    matches           bigint NOT NULL DEFAULT 0 CHECK (matches >= 0),
    possible_matches  bigint NOT NULL DEFAULT 0 CHECK (possible_matches >= 0),
    merged            bigint NOT NULL DEFAULT 0 CHECK (merged >= 0),
    queued            bigint NOT NULL DEFAULT 0 CHECK (queued >= 0),
    -- Pairs not proposed again because a reviewer said "not the same person".
    rejected          bigint NOT NULL DEFAULT 0 CHECK (rejected >= 0),
    -- Matches held back from auto-merge by a guard rail or by clustering (they are queued instead).
    guarded           bigint NOT NULL DEFAULT 0 CHECK (guarded >= 0),
    -- Share of the people compared that were found in a match or possible match.
    duplicate_rate    double precision CHECK (duplicate_rate BETWEEN 0 AND 1),
    -- Median duplicate rate of the recent succeeded runs it was compared with, and the alert.
    baseline_rate     double precision,
    rate_spike        boolean NOT NULL DEFAULT false,
    details           jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX dedupe_run_started ON ops.dedupe_run (started_at DESC);
COMMENT ON TABLE ops.dedupe_run IS
    'Per dedupe run: people compared, candidate pairs, merged, queued, rejected, duplicate rate, spike flag.';

-- Scored pairs of one run, written by the (mapped) scoring tasks and read by the merge step.
CREATE TABLE ops.identity_pair_score (
    run_id        text NOT NULL REFERENCES ops.dedupe_run ON DELETE CASCADE,
    person_low    uuid NOT NULL,
    person_high   uuid NOT NULL,
    shard         integer NOT NULL,
    score         double precision NOT NULL,
    match_weight  double precision NOT NULL,
    class         text NOT NULL CHECK (class IN ('match', 'possible_match', 'non_match')),
    guard         text,
    levels        jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (run_id, person_low, person_high),
    CHECK (person_low < person_high)
);

-- ---------------------------------------------------------------------------------------------------------
-- One row per pair of people ever proposed: its latest score and where it stands. The review queue is the
-- 'queued' rows (see ops.identity_review_queue for both records side by side).
-- ---------------------------------------------------------------------------------------------------------
CREATE TABLE ops.identity_pair (
    pair_id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_low         uuid NOT NULL REFERENCES core.person,
    person_high        uuid NOT NULL REFERENCES core.person,
    first_run_id       text NOT NULL,
    last_run_id        text NOT NULL,
    score              double precision NOT NULL,
    match_weight       double precision NOT NULL,
    class              text NOT NULL CHECK (class IN ('match', 'possible_match')),
    -- Why a match was not merged automatically (guard rail, transitive-only link, undone merge), if so.
    guard              text,
    levels             jsonb NOT NULL DEFAULT '{}'::jsonb,
    status             text NOT NULL CHECK (status IN ('queued', 'approved', 'merged', 'rejected')),
    -- False once a merge of this pair was undone: it may be merged again only by a reviewer.
    auto_merge_allowed boolean NOT NULL DEFAULT true,
    merge_id           bigint,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (person_low, person_high),
    CHECK (person_low < person_high)
);
CREATE INDEX identity_pair_queue ON ops.identity_pair (score DESC) WHERE status = 'queued';
CREATE INDEX identity_pair_high ON ops.identity_pair (person_high);

-- Every reviewer decision, kept for ever. A 'different' decision is final for every later run: the pair
-- (and, after merges, any pair joining the two people's merged records) is never proposed again.
CREATE TABLE ops.identity_decision (
    decision_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pair_id      bigint NOT NULL REFERENCES ops.identity_pair,
    person_low   uuid NOT NULL,
    person_high  uuid NOT NULL,
    decision     text NOT NULL CHECK (decision IN ('same', 'different')),
    reviewer     text NOT NULL CHECK (length(trim(reviewer)) > 0),
    note         text,
    decided_at   timestamptz NOT NULL DEFAULT now(),
    db_role      text NOT NULL DEFAULT current_user,
    CHECK (person_low < person_high)
);
CREATE INDEX identity_decision_people ON ops.identity_decision (person_low, person_high);

-- A decision moves its pair out of the queue: 'same' to 'approved' (merged by the next run), 'different' to
-- 'rejected' (final). SECURITY DEFINER, so program staff need no UPDATE right on the pairs themselves: the
-- only way they change a pair is by recording a decision on a queued one.
CREATE FUNCTION ops.apply_identity_decision() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, ops
AS $$
BEGIN
    UPDATE ops.identity_pair
    SET status = CASE NEW.decision WHEN 'same' THEN 'approved' ELSE 'rejected' END, updated_at = now()
    WHERE pair_id = NEW.pair_id AND status = 'queued'
      AND person_low = NEW.person_low AND person_high = NEW.person_high;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pair % is not awaiting review', NEW.pair_id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION ops.apply_identity_decision() FROM PUBLIC;
CREATE TRIGGER apply_decision AFTER INSERT ON ops.identity_decision
    FOR EACH ROW EXECUTE FUNCTION ops.apply_identity_decision();

-- ---------------------------------------------------------------------------------------------------------
-- Merges: who absorbed whom, both person rows as they were, and every row the merge re-pointed.
-- ---------------------------------------------------------------------------------------------------------
CREATE TABLE ops.identity_merge (
    merge_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id           text,
    pair_id          bigint REFERENCES ops.identity_pair,
    survivor_id      uuid NOT NULL REFERENCES core.person,
    absorbed_id      uuid NOT NULL REFERENCES core.person,
    reason           text NOT NULL CHECK (reason IN ('auto', 'review')),
    score            double precision,
    merged_at        timestamptz NOT NULL DEFAULT now(),
    merged_by        text,
    survivor_before  jsonb NOT NULL,
    absorbed_before  jsonb NOT NULL,
    unmerged_at      timestamptz,
    unmerged_by      text,
    unmerge_details  jsonb,
    CHECK (survivor_id <> absorbed_id)
);
CREATE INDEX identity_merge_absorbed ON ops.identity_merge (absorbed_id) WHERE unmerged_at IS NULL;
CREATE INDEX identity_merge_survivor ON ops.identity_merge (survivor_id) WHERE unmerged_at IS NULL;
ALTER TABLE ops.identity_pair
    ADD CONSTRAINT identity_pair_merge FOREIGN KEY (merge_id) REFERENCES ops.identity_merge;

CREATE TABLE ops.identity_merge_move (
    merge_id       bigint NOT NULL REFERENCES ops.identity_merge,
    table_name     text NOT NULL,
    column_name    text NOT NULL,
    row_key        jsonb NOT NULL,
    old_person_id  uuid NOT NULL,
    new_person_id  uuid NOT NULL,
    PRIMARY KEY (merge_id, table_name, column_name, row_key)
);
COMMENT ON TABLE ops.identity_merge_move IS
    'Each row a merge re-pointed (table, primary key, column, person before and after): what unmerge restores.';

-- The person a record now stands as: itself, or the survivor at the end of its merges.
CREATE FUNCTION ops.person_root(p_person uuid) RETURNS uuid
    LANGUAGE sql STABLE
AS $$
    WITH RECURSIVE chain AS (
        SELECT person_id, merged_into, 0 AS depth FROM core.person WHERE person_id = p_person
        UNION ALL
        SELECT p.person_id, p.merged_into, c.depth + 1
        FROM chain c JOIN core.person p ON p.person_id = c.merged_into
        WHERE c.depth < 100
    )
    SELECT person_id FROM chain WHERE merged_into IS NULL
$$;

-- ---------------------------------------------------------------------------------------------------------
-- The review queue for program staff: both records side by side, strongest evidence first. A side that was
-- merged since the pair was scored shows as its survivor; pairs whose sides are now one person drop out.
-- ---------------------------------------------------------------------------------------------------------
CREATE VIEW ops.identity_review_queue AS
SELECT q.pair_id, q.score, q.class, q.guard, q.levels, q.first_run_id, q.last_run_id, q.created_at,
       l.person_id AS left_person_id, l.given_name AS left_given_name, l.family_name AS left_family_name,
       l.date_of_birth AS left_date_of_birth, l.email AS left_email, l.phone AS left_phone,
       l.country AS left_country, l.is_learner AS left_is_learner, l.is_donor AS left_is_donor,
       (SELECT string_agg(s.source, ', ' ORDER BY s.source) FROM core.person_source_id s
         WHERE s.person_id = l.person_id) AS left_sources,
       r.person_id AS right_person_id, r.given_name AS right_given_name, r.family_name AS right_family_name,
       r.date_of_birth AS right_date_of_birth, r.email AS right_email, r.phone AS right_phone,
       r.country AS right_country, r.is_learner AS right_is_learner, r.is_donor AS right_is_donor,
       (SELECT string_agg(s.source, ', ' ORDER BY s.source) FROM core.person_source_id s
         WHERE s.person_id = r.person_id) AS right_sources
FROM ops.identity_pair q
JOIN core.person l ON l.person_id = ops.person_root(q.person_low)
JOIN core.person r ON r.person_id = ops.person_root(q.person_high)
WHERE q.status = 'queued' AND l.person_id <> r.person_id;
COMMENT ON VIEW ops.identity_review_queue IS
    'Possible duplicates awaiting a decision (cdp dedupe review), both records side by side.';

-- ---------------------------------------------------------------------------------------------------------
-- Privileges: the loader (Airflow) runs dedupe; editors (program staff) read the queue and record decisions
-- (which is all they can change: see ops.apply_identity_decision); viewers read. No new core table here, so nothing to register with audit.track_changes.
-- ---------------------------------------------------------------------------------------------------------
REVOKE ALL ON ops.dedupe_run, ops.identity_pair_score, ops.identity_pair, ops.identity_decision,
              ops.identity_merge, ops.identity_merge_move, ops.identity_review_queue FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE
    ON ops.dedupe_run, ops.identity_pair_score, ops.identity_pair, ops.identity_decision,
       ops.identity_merge, ops.identity_merge_move
    TO cdp_loader;
GRANT SELECT ON ops.identity_review_queue TO cdp_loader;
GRANT SELECT ON ops.dedupe_run, ops.identity_pair, ops.identity_decision, ops.identity_merge,
                ops.identity_merge_move, ops.identity_review_queue
    TO cdp_viewer, cdp_editor, cdp_admin;
GRANT INSERT ON ops.identity_decision TO cdp_editor, cdp_admin;
