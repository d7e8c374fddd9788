-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Added by issue 15 (no revision defines it).

-- The audit trail as a staff role may read it: every event's metadata, and each row image cut to the
-- columns the reader may read in the table it is an image of. Staff roles other than admin and the loader
-- have no SELECT on audit.audit_events' before, after and details (revision 0018): a consent statement is
-- chained in clear there, and core.consent is refused to them.
--
-- An image is the array of rows a statement changed (audit.record_change). A key of a row is kept when the
-- reader holds SELECT on that column of that table (has_column_privilege is the reader's: a view does not
-- change current_user); the "_personal" reference and the keys of a dropped column go. An application event
-- (audit.record_event: reviews, corrections, erasures, logins) carries free-form before/after/details:
-- shown only to a reader of the whole chain.
CREATE OR REPLACE FUNCTION audit.readable_image(p_table text, p_images jsonb) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_agg((SELECT coalesce(jsonb_object_agg(f.key, f.value), '{}'::jsonb)
                      FROM jsonb_each(i.item) AS f(key, value)
                      JOIN pg_catalog.pg_attribute a
                        ON a.attrelid = pg_catalog.to_regclass(p_table) AND a.attname = f.key
                       AND a.attnum > 0 AND NOT a.attisdropped
                      WHERE pg_catalog.has_column_privilege(a.attrelid, a.attnum, 'SELECT'))
                     ORDER BY i.ordinality)
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p_images) = 'array' THEN p_images END)
         WITH ORDINALITY AS i(item, ordinality)
    WHERE jsonb_typeof(i.item) = 'object'
$$;
-- No grants: PostgreSQL's default (EXECUTE for PUBLIC); it reads nothing the caller could not.

CREATE OR REPLACE VIEW audit.readable_events WITH (security_barrier = true) AS
SELECT e.seq, e.occurred_at, e.db_role, e.session_role, e.actor, e.action, e.entity_type, e.entity_id,
       CASE WHEN k.whole_chain THEN e.before
            WHEN k.row_change THEN audit.readable_image(e.entity_type, e.before) END AS before,
       CASE WHEN k.whole_chain THEN e.after
            WHEN k.row_change THEN audit.readable_image(e.entity_type, e.after) END AS after,
       CASE WHEN k.whole_chain OR k.row_change THEN e.details END AS details,
       e.dag_id, e.run_id, e.task_id, e.txid
FROM audit.audit_events e
CROSS JOIN LATERAL (
    SELECT has_column_privilege('audit.audit_events', 'after', 'SELECT') AS whole_chain,
           e.action IN ('insert', 'update', 'delete') AND e.details ? 'personal_images' AS row_change
) AS k;
COMMENT ON VIEW audit.readable_events IS
    'Audit events with each row image cut to the columns the reader may read in core; the images of '
    'application events only for readers of the whole chain.';
REVOKE ALL ON audit.readable_events FROM PUBLIC;
GRANT SELECT ON audit.readable_events TO cdp_loader, cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
-- The funder report names the audit events behind its rows: their metadata only (revision 0032).
GRANT SELECT (seq, occurred_at, entity_type, action, entity_id) ON audit.readable_events TO cdp_funder_report;
