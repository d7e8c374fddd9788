-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Added for revision 0027 (the dedupe DAG's own role, cdp_dedupe; issue 15).

-- One merge: `p_absorbed` into `p_survivor`, inside the caller's transaction; returns the merge id.
-- Both person rows are kept whole as before-images in ops.identity_merge, every row of core that points to
-- the absorbed person (every single-column foreign key to core.person, found in the catalog) is re-pointed
-- to the survivor and recorded in ops.identity_merge_move (rows whose move would break a unique key, the
-- survivor already holding the same membership, stay on the absorbed person and are counted), the absorbed
-- person gets merged_into, the pair (if given) is marked merged, and the merge is an audit event.
-- cdp.identity.merges.unmerge puts every recorded row back.
--
-- SECURITY DEFINER so that the role that merges (cdp_dedupe) needs no right on what a merge moves: it
-- re-points consent statements, donations, support tickets and survey answers without being able to read
-- them (issue 15: personal data only for the roles that may read it), and it cannot change anything a merge
-- would not (only the person column, only from the absorbed person to the survivor, every row recorded).
-- A table added later with a foreign key to core.person needs UPDATE on that column for cdp_definer in its
-- revision (tests/identity/test_dedupe_role.py checks every one).
CREATE OR REPLACE FUNCTION ops.merge_people(
    p_survivor uuid, p_absorbed uuid, p_reason text, p_run_id text DEFAULT NULL, p_pair_id bigint DEFAULT NULL,
    p_score double precision DEFAULT NULL, p_merged_by text DEFAULT NULL
) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    survivor_before jsonb;
    absorbed_before jsonb;
    new_merge_id    bigint;
    reference       record;
    row_key         jsonb;
    moved_count     bigint;
    kept_count      bigint;
    moved           jsonb := '{}'::jsonb;
    kept            jsonb := '{}'::jsonb;
    move_all        text;
    move_one        text;
BEGIN
    IF p_survivor = p_absorbed THEN
        RAISE EXCEPTION 'a person cannot be merged into itself' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT pg_catalog.to_jsonb(p) INTO survivor_before FROM core.person p WHERE p.person_id = p_survivor FOR UPDATE;
    IF survivor_before IS NULL THEN
        RAISE EXCEPTION 'person % does not exist', p_survivor USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT pg_catalog.to_jsonb(p) INTO absorbed_before FROM core.person p WHERE p.person_id = p_absorbed FOR UPDATE;
    IF absorbed_before IS NULL THEN
        RAISE EXCEPTION 'person % does not exist', p_absorbed USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF survivor_before ->> 'merged_into' IS NOT NULL THEN
        RAISE EXCEPTION 'person % is already merged into another person', p_survivor
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF absorbed_before ->> 'merged_into' IS NOT NULL THEN
        RAISE EXCEPTION 'person % is already merged into another person', p_absorbed
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    INSERT INTO ops.identity_merge (run_id, pair_id, survivor_id, absorbed_id, reason, score, merged_by,
                                    survivor_before, absorbed_before)
    VALUES (p_run_id, p_pair_id, p_survivor, p_absorbed, p_reason, p_score, p_merged_by,
            survivor_before, absorbed_before)
    RETURNING merge_id INTO new_merge_id;

    -- The same references as sql/dedupe/person_references.sql (what unmerge puts back).
    FOR reference IN
        SELECT c.conrelid::regclass AS target, c.conrelid::regclass::text AS table_name, a.attname AS column_name,
               (SELECT pg_catalog.string_agg(pg_catalog.format('%L, t.%I', k.attname, k.attname), ', '
                                             ORDER BY k.attnum)
                FROM pg_catalog.pg_constraint pk
                JOIN pg_catalog.pg_attribute k ON k.attrelid = pk.conrelid AND k.attnum = ANY (pk.conkey)
                WHERE pk.conrelid = c.conrelid AND pk.contype = 'p') AS key_pairs
        FROM pg_catalog.pg_constraint c
        JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        JOIN pg_catalog.pg_class r ON r.oid = c.conrelid
        JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace
        WHERE c.contype = 'f' AND c.confrelid = 'core.person'::regclass AND n.nspname = 'core'
          AND pg_catalog.array_length(c.conkey, 1) = 1
        ORDER BY 2, 3
    LOOP
        IF reference.key_pairs IS NULL THEN
            RAISE EXCEPTION '% has no primary key: its rows cannot be moved reversibly', reference.table_name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        move_all := pg_catalog.format(
            'WITH moved AS (UPDATE %s t SET %I = $2 WHERE t.%I = $1 RETURNING pg_catalog.jsonb_build_object(%s) AS row_key)'
            ' INSERT INTO ops.identity_merge_move (merge_id, table_name, column_name, row_key, old_person_id,'
            ' new_person_id) SELECT $3, $4, $5, moved.row_key, $1, $2 FROM moved',
            reference.target, reference.column_name, reference.column_name, reference.key_pairs);
        kept_count := 0;
        BEGIN
            EXECUTE move_all USING p_absorbed, p_survivor, new_merge_id, reference.table_name, reference.column_name;
            GET DIAGNOSTICS moved_count = ROW_COUNT;
        EXCEPTION WHEN unique_violation THEN
            -- Row by row: the rows that can move do, the others stay on the absorbed person.
            moved_count := 0;
            move_one := pg_catalog.format(
                'WITH moved AS (UPDATE %s t SET %I = $2 WHERE t.%I = $1 AND pg_catalog.jsonb_build_object(%s) = $6'
                ' RETURNING pg_catalog.jsonb_build_object(%s) AS row_key)'
                ' INSERT INTO ops.identity_merge_move (merge_id, table_name, column_name, row_key, old_person_id,'
                ' new_person_id) SELECT $3, $4, $5, moved.row_key, $1, $2 FROM moved',
                reference.target, reference.column_name, reference.column_name, reference.key_pairs,
                reference.key_pairs);
            FOR row_key IN EXECUTE pg_catalog.format(
                    'SELECT pg_catalog.jsonb_build_object(%s) FROM %s t WHERE t.%I = $1',
                    reference.key_pairs, reference.target, reference.column_name) USING p_absorbed
            LOOP
                BEGIN
                    EXECUTE move_one USING p_absorbed, p_survivor, new_merge_id, reference.table_name,
                                           reference.column_name, row_key;
                    moved_count := moved_count + 1;
                EXCEPTION WHEN unique_violation THEN
                    kept_count := kept_count + 1;
                END;
            END LOOP;
        END;
        IF moved_count > 0 THEN
            moved := moved || pg_catalog.jsonb_build_object(reference.table_name || '.' || reference.column_name, moved_count);
        END IF;
        IF kept_count > 0 THEN
            kept := kept || pg_catalog.jsonb_build_object(reference.table_name || '.' || reference.column_name, kept_count);
        END IF;
    END LOOP;

    UPDATE core.person SET merged_into = p_survivor WHERE person_id = p_absorbed;
    IF p_pair_id IS NOT NULL THEN
        UPDATE ops.identity_pair SET status = 'merged', merge_id = new_merge_id, updated_at = pg_catalog.now()
        WHERE pair_id = p_pair_id;
    END IF;
    PERFORM audit.record_event(
        'merge', 'core.person', p_absorbed::text,
        pg_catalog.jsonb_build_object('merge_id', new_merge_id, 'survivor_id', p_survivor, 'absorbed_id', p_absorbed,
                                      'reason', p_reason, 'score', p_score, 'pair_id', p_pair_id, 'run_id', p_run_id,
                                      'rows_moved', moved, 'rows_left_on_absorbed', kept),
        pg_catalog.jsonb_build_object('merged_into', NULL),
        pg_catalog.jsonb_build_object('merged_into', p_survivor));
    RETURN new_merge_id;
END
$$;
REVOKE ALL ON FUNCTION ops.merge_people(uuid, uuid, text, text, bigint, double precision, text) FROM PUBLIC;
-- The dedupe DAG's role; the pipeline's (a dedupe DAG without its own connection falls back to it) and the
-- operator's (`cdp dedupe run`).
GRANT EXECUTE ON FUNCTION ops.merge_people(uuid, uuid, text, text, bigint, double precision, text)
    TO cdp_dedupe, cdp_loader, cdp_admin;
ALTER FUNCTION ops.merge_people(uuid, uuid, text, text, bigint, double precision, text) OWNER TO cdp_definer;
