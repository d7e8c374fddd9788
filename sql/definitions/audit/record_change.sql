-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0001_foundation.sql.
-- Last defined by sql/migrations/versions/0012_privacy_erasure.sql.

-- Row changes on audited tables: one event per statement and table, with the rows before and after.
-- Statement-level with transition tables, so a bulk upsert of 100,000 rows costs one event, not 100,000.
-- Personal data never enters the chain: each row image is split in two. The public part (ids, statuses,
-- amounts, times) stays in audit.audit_events.before/after; the personal fields (the columns listed in
-- audit.personal_column) and the statement text go to audit.personal_image, one sealed row per row image,
-- referenced from the public image by "_personal": image_id, so an erasure can blank them (0012's header
-- has the whole design and the alternative that was weighed).
-- SECURITY DEFINER (since 0017): the application roles cannot insert into audit.audit_events or
-- audit.personal_image themselves, only through this trigger and audit.record_event.
CREATE OR REPLACE FUNCTION audit.record_change() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    key_column  text := TG_ARGV[0];
    target      text := TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME;
    personal    text[];
    image_set   uuid := gen_random_uuid();
    changed     bigint;
    rows_before jsonb;
    rows_after  jsonb;
    first_row   jsonb;
    set_digest  text;
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        SELECT jsonb_agg(to_jsonb(n)) INTO rows_after FROM new_rows n;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        SELECT jsonb_agg(to_jsonb(o)) INTO rows_before FROM old_rows o;
    END IF;
    changed := coalesce(jsonb_array_length(coalesce(rows_after, rows_before)), 0);
    IF changed = 0 THEN
        RETURN NULL;
    END IF;
    first_row := coalesce(rows_after, rows_before) -> 0;
    SELECT coalesce(array_agg(column_name ORDER BY column_name), '{}') INTO personal
    FROM audit.personal_column WHERE table_name = target;

    -- One pass, no joins between the steps (a join of CTEs has no index: quadratic on a bulk upsert).
    WITH row_images AS MATERIALIZED (
        SELECT 'after' AS side, ord, r FROM jsonb_array_elements(rows_after) WITH ORDINALITY AS a(r, ord)
        UNION ALL
        SELECT 'before', ord, r FROM jsonb_array_elements(rows_before) WITH ORDINALITY AS b(r, ord)
    ), split AS MATERIALIZED (
        SELECT side, ord, r - personal AS public, fields,
               coalesce(r ->> 'person_id', r ->> 'household_id') AS subject_id,
               CASE WHEN fields IS NOT NULL THEN gen_random_uuid() END AS image_id,
               CASE WHEN fields IS NOT NULL THEN gen_random_uuid()::text END AS salt,
               CASE WHEN fields IS NOT NULL
                    THEN row_number() OVER (PARTITION BY fields IS NOT NULL ORDER BY side DESC, ord)::integer
               END AS ordinal
        FROM (SELECT side, ord, r,
                     (SELECT jsonb_object_agg(k, r -> k) FROM unnest(personal) AS k WHERE r ? k) AS fields
              FROM row_images) AS with_fields
    ), images AS MATERIALIZED (
        SELECT image_id, ordinal, subject_id, fields, salt,
               encode(sha256(convert_to(salt || fields::text, 'UTF8')), 'hex') AS seal
        FROM split WHERE fields IS NOT NULL
        UNION ALL
        SELECT image_id, 0, NULL, fields, salt, encode(sha256(convert_to(salt || fields::text, 'UTF8')), 'hex')
        FROM (SELECT gen_random_uuid() AS image_id, gen_random_uuid()::text AS salt,
                     jsonb_build_object('statement', left(current_query(), 2000)) AS fields) AS statement
    ), stored AS (
        INSERT INTO audit.personal_image (image_id, image_set, ordinal, subject_id, fields, salt, seal)
        SELECT image_id, image_set, ordinal, subject_id, fields, salt, seal FROM images
    )
    SELECT
        (SELECT jsonb_agg(CASE WHEN image_id IS NULL THEN public
                               ELSE public || jsonb_build_object('_personal', image_id) END ORDER BY ord)
           FROM split WHERE side = 'after'),
        (SELECT jsonb_agg(CASE WHEN image_id IS NULL THEN public
                               ELSE public || jsonb_build_object('_personal', image_id) END ORDER BY ord)
           FROM split WHERE side = 'before'),
        (SELECT encode(sha256(convert_to(string_agg(image_id::text || ':' || seal, ',' ORDER BY ordinal), 'UTF8')), 'hex')
           FROM images)
    INTO rows_after, rows_before, set_digest;

    INSERT INTO audit.audit_events (occurred_at, db_role, session_role, action, entity_type, entity_id,
                                    before, after, details, txid)
    VALUES (now(), '', '', lower(TG_OP), target,
            CASE WHEN changed = 1 THEN
                 CASE WHEN key_column = ANY (personal) THEN coalesce(first_row ->> 'person_id', first_row ->> 'household_id')
                      ELSE first_row ->> key_column END
            END,
            rows_before, rows_after,
            jsonb_build_object('rows', changed, 'personal_images', image_set, 'personal_digest', set_digest),
            0);
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION audit.record_change() FROM PUBLIC;

-- Adds the three statement triggers to a table; every core table is registered through it.
CREATE OR REPLACE FUNCTION audit.track_changes(target regclass, key_column text) RETURNS void
    LANGUAGE plpgsql
AS $$
BEGIN
    EXECUTE format('CREATE TRIGGER audit_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION audit.record_change(%L)', target, key_column);
    EXECUTE format('CREATE TRIGGER audit_update AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows '
                   'NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION audit.record_change(%L)',
                   target, key_column);
    EXECUTE format('CREATE TRIGGER audit_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION audit.record_change(%L)', target, key_column);
    EXECUTE format('CREATE TRIGGER audit_truncate BEFORE TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()', target);
END
$$;
-- No grants: PostgreSQL's default (EXECUTE for PUBLIC).
