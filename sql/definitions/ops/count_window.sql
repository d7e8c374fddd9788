-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0004_quality_finance.sql; changed since (issue 17: deletions).

-- A payload's cursor time: epoch seconds (Moodle, Stripe) or ISO 8601 text (Salesforce, surveys).
CREATE OR REPLACE FUNCTION ops.payload_time(p_payload jsonb, p_field text) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_payload ->> p_field IS NULL OR p_payload ->> p_field = '' THEN NULL
        WHEN p_payload ->> p_field ~ '^\d+(\.\d+)?$' THEN to_timestamp((p_payload ->> p_field)::double precision)
        ELSE (p_payload ->> p_field)::timestamptz
    END
$$;
-- No grants: PostgreSQL's default (EXECUTE for PUBLIC).

-- Raw, core, quarantine and deleted counts for one stream and window, by each record's latest landed version.
-- p_core_table / p_key_source: where a record of the stream shows up in core, keyed by (source,
-- source_record_id) (people: core.person_source_id with the stream's person key space). A record whose core
-- row is marked deleted at the source (deleted_at, revision 0024) counts as deleted, not as in core: the
-- source no longer counts it either. A record deleted at the source before it reached core (core.source_deletion,
-- revision 0023) counts as deleted the same way. The version without deleted_count is dropped first (a replace cannot add
-- a column to the answer); once replaced, a re-run of the definitions leaves the function as it is.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_proc p
               WHERE p.oid = to_regprocedure('ops.count_window(text,text,regclass,text,text,timestamptz,timestamptz)')
                 AND NOT 'deleted_count' = ANY (p.proargnames)) THEN
        DROP FUNCTION ops.count_window(text, text, regclass, text, text, timestamptz, timestamptz);
    END IF;
END
$$;
CREATE OR REPLACE FUNCTION ops.count_window(
    p_source text, p_stream text, p_core_table regclass, p_key_source text, p_cursor_field text,
    p_since timestamptz, p_until timestamptz
) RETURNS TABLE (raw_count bigint, core_count bigint, quarantined_count bigint, deleted_count bigint)
    LANGUAGE plpgsql STABLE
AS $$
DECLARE
    deleted_test text := 'false';
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
               WHERE a.attrelid = p_core_table AND a.attname = 'deleted_at' AND NOT a.attisdropped) THEN
        deleted_test := 'c.deleted_at IS NOT NULL';
    END IF;
    RETURN QUERY EXECUTE format(
        $q$
        WITH latest AS (
            SELECT DISTINCT ON (r.source_record_id) r.source_record_id, r.payload
            FROM raw.records r
            WHERE r.source = $1 AND r.stream = $2 AND r.source_record_id IS NOT NULL
            ORDER BY r.source_record_id, r.raw_id DESC
        ), in_window AS (
            SELECT l.source_record_id,
                   CASE WHEN c.in_core OR g.gone THEN true END AS in_core,
                   coalesce(c.deleted, false) OR (c.in_core IS NULL AND coalesce(g.gone, false)) AS deleted
            FROM latest l
            LEFT JOIN LATERAL (SELECT true AS in_core, %s AS deleted FROM %s c
                               WHERE c.source = $3 AND c.source_record_id = l.source_record_id
                               LIMIT 1) c ON true
            LEFT JOIN LATERAL (SELECT true AS gone FROM core.source_deletion d
                               WHERE d.source = $3 AND d.source_record_id = l.source_record_id
                               LIMIT 1) g ON true
            WHERE ops.payload_time(l.payload, $4) >= $5 AND ops.payload_time(l.payload, $4) < $6
        )
        SELECT count(*)::bigint,
               count(*) FILTER (WHERE w.in_core AND NOT w.deleted)::bigint,
               count(*) FILTER (WHERE w.in_core IS NULL AND EXISTS (
                   SELECT 1 FROM ops.quarantine q
                   WHERE q.source = $1 AND q.stream = $2 AND q.source_record_id = w.source_record_id
                     AND q.resolved_at IS NULL))::bigint,
               count(*) FILTER (WHERE w.in_core AND w.deleted)::bigint
        FROM in_window w
        $q$, deleted_test, p_core_table)
    USING p_source, p_stream, p_key_source, p_cursor_field, p_since, p_until;
END
$$;
-- No grants: PostgreSQL's default (EXECUTE for PUBLIC).
