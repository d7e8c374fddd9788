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

-- Raw, core and quarantine counts for one stream and window, by each record's latest landed version.
-- p_core_table / p_key_source: where a record of the stream shows up in core, keyed by (source,
-- source_record_id) (people: core.person_source_id with the stream's person key space). A record deleted at the
-- source before it reached core counts as in core when core.source_deletion keeps its deletion (revision 0023).
CREATE OR REPLACE FUNCTION ops.count_window(
    p_source text, p_stream text, p_core_table regclass, p_key_source text, p_cursor_field text,
    p_since timestamptz, p_until timestamptz
) RETURNS TABLE (raw_count bigint, core_count bigint, quarantined_count bigint)
    LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        $q$
        WITH latest AS (
            SELECT DISTINCT ON (r.source_record_id) r.source_record_id, r.payload
            FROM raw.records r
            WHERE r.source = $1 AND r.stream = $2 AND r.source_record_id IS NOT NULL
            ORDER BY r.source_record_id, r.raw_id DESC
        ), in_window AS (
            SELECT l.source_record_id,
                   (EXISTS (SELECT 1 FROM %s c WHERE c.source = $3 AND c.source_record_id = l.source_record_id)
                    OR EXISTS (SELECT 1 FROM core.source_deletion d
                               WHERE d.source = $3 AND d.source_record_id = l.source_record_id)) AS in_core
            FROM latest l
            WHERE ops.payload_time(l.payload, $4) >= $5 AND ops.payload_time(l.payload, $4) < $6
        )
        SELECT count(*)::bigint,
               count(*) FILTER (WHERE w.in_core)::bigint,
               count(*) FILTER (WHERE NOT w.in_core AND EXISTS (
                   SELECT 1 FROM ops.quarantine q
                   WHERE q.source = $1 AND q.stream = $2 AND q.source_record_id = w.source_record_id
                     AND q.resolved_at IS NULL))::bigint
        FROM in_window w
        $q$, p_core_table)
    USING p_source, p_stream, p_key_source, p_cursor_field, p_since, p_until;
END
$$;
-- No grants: PostgreSQL's default (EXECUTE for PUBLIC).
