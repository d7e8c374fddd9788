-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0003_identity_merges.sql.

-- A decision moves its pair out of the queue: 'same' to 'approved' (merged by the next run), 'different' to
-- 'rejected' (final). SECURITY DEFINER, so program staff need no UPDATE right on the pairs themselves: the
-- only way they change a pair is by recording a decision on a queued one.
CREATE OR REPLACE FUNCTION ops.apply_identity_decision() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
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

-- The person a record now stands as: itself, or the survivor at the end of its merges.
CREATE OR REPLACE FUNCTION ops.person_root(p_person uuid) RETURNS uuid
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
-- No grants: PostgreSQL's default (EXECUTE for PUBLIC).
