-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0005_access_consent.sql.
-- Last defined by sql/migrations/versions/0006_legacy_audit_platforms.sql.

-- raw stays append-only, with one exception: an erasure may overwrite a payload with its redacted version
-- (same row, same source, stream, id, run and time), and only while privacy.erase_person runs (it sets
-- cdp.raw_redaction for its own transaction). No application role holds UPDATE on raw.records at all, so
-- the only way there is that function, which only admin may execute and which audits what it did.
CREATE OR REPLACE FUNCTION raw.refuse_change() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'records'
       AND current_setting('cdp.raw_redaction', true) = 'on'
       AND (NEW.raw_id, NEW.source, NEW.stream, NEW.source_record_id, NEW.run_id, NEW.received_at)
           IS NOT DISTINCT FROM (OLD.raw_id, OLD.source, OLD.stream, OLD.source_record_id, OLD.run_id, OLD.received_at)
       AND NEW.payload ? '_erased' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'raw.% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- No grants: PostgreSQL's default (EXECUTE for PUBLIC).

-- Its own guard: raw.refuse_change() knows raw.records' columns (the erasure's redaction path, 0005).
CREATE OR REPLACE FUNCTION raw.refuse_legacy_file_change() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'raw.legacy_file is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- No grants: PostgreSQL's default (EXECUTE for PUBLIC).
