-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0012_privacy_erasure.sql.

-- audit.personal_image is append-only like the chain, with one exception: privacy.erase_person (which sets
-- cdp.audit_image_erasure for its own transaction) blanks an image's fields and salt, keeping its seal.
CREATE OR REPLACE FUNCTION audit.guard_personal_image() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND current_setting('cdp.audit_image_erasure', true) = 'on'
       AND OLD.fields IS NOT NULL AND NEW.fields IS NULL AND NEW.salt IS NULL
       AND NEW.erased_at IS NOT NULL AND NEW.erasure_id LIKE 'erasure:%'
       AND (NEW.image_id, NEW.image_set, NEW.ordinal, NEW.subject_id, NEW.seal, NEW.recorded_at)
           IS NOT DISTINCT FROM (OLD.image_id, OLD.image_set, OLD.ordinal, OLD.subject_id, OLD.seal, OLD.recorded_at)
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit.personal_image is append-only: % is not allowed (only an erasure blanks an image)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- No grants: PostgreSQL's default (EXECUTE for PUBLIC).

-- A chained image array with the personal fields put back (or, for an erased image, the erasure's id in
-- their place): what an auditor reads. Runs as the caller, so only admin gets past the personal images.
CREATE OR REPLACE FUNCTION audit.with_personal_fields(images jsonb) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_agg(CASE WHEN e.item ? '_personal'
                          THEN (e.item - '_personal')
                               || coalesce(i.fields, jsonb_build_object('_personal_erased', i.erasure_id))
                          ELSE e.item END ORDER BY e.ordinality)
    FROM jsonb_array_elements(images) WITH ORDINALITY AS e(item, ordinality)
    LEFT JOIN audit.personal_image i ON i.image_id = (e.item ->> '_personal')::uuid
$$;
REVOKE ALL ON FUNCTION audit.with_personal_fields(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.with_personal_fields(jsonb) TO cdp_admin;

-- The seal of each image checked against its content, without handing the content out: `cdp audit verify`
-- (any role may run it) folds these into each event's digest and compares with the chain.
CREATE OR REPLACE FUNCTION audit.personal_image_seals() RETURNS TABLE (
    image_set uuid, ordinal integer, image_id uuid, seal text, content_matches boolean, erasure_id text,
    subject_id text
)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT i.image_set, i.ordinal, i.image_id, i.seal,
           CASE WHEN i.erased_at IS NULL
                THEN i.seal = encode(sha256(convert_to(i.salt || i.fields::text, 'UTF8')), 'hex')
                ELSE i.fields IS NULL AND i.salt IS NULL END,
           i.erasure_id, i.subject_id
    FROM audit.personal_image i
    ORDER BY i.image_set, i.ordinal
$$;
REVOKE ALL ON FUNCTION audit.personal_image_seals() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.personal_image_seals() TO cdp_loader, cdp_viewer, cdp_editor, cdp_admin, cdp_finance,
    cdp_evidence;  -- the evidence pack verifies the chain (revision 0029)
