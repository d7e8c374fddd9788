-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0014_crm_linking.sql.

-- Erasure and export cover the migration's ops and raw tables (phases 1-2 and the referral spreadsheet)
-- through privacy.erase_person_ops and privacy.export_person_ops, beside privacy.erase_person: cdp.privacy
-- calls erase_person_ops first, in the same transaction (it finds the rows by the person's emails and
-- legacy ids, which erase_person then blanks). Personal data they reach: the legacy exports' rows (raw.records source 'legacy', their cleaned
-- values in ops.legacy_clean_record, the review queue's payloads), the referral spreadsheet rows
-- (ops.referral_legacy), and what the CRM push kept per person (error messages, unsalted value hashes).
CREATE OR REPLACE FUNCTION privacy.legacy_rows_of(p_person uuid) RETURNS TABLE (export text, row_key text)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH targets AS (
        SELECT privacy.person_and_merged(p_person) AS person_id
    ), emails AS (
        SELECT DISTINCT lower(e) AS email FROM core.person p, unnest(ARRAY[p.email, p.email_normalized]) AS e
        WHERE p.person_id IN (SELECT person_id FROM targets) AND length(e) >= 5
    ), ids AS (
        SELECT m.source, m.source_record_id FROM core.person_source_id m
        WHERE m.person_id IN (SELECT person_id FROM targets) AND m.source IN ('legacy_lms', 'legacy_crm')
    ), rows AS (
        SELECT c.export, c.row_key, c.values FROM ops.legacy_clean_record c
        UNION ALL
        SELECT r.export, r.row_key, r.payload -> 'values' FROM ops.legacy_review r
    )
    SELECT DISTINCT r.export, r.row_key FROM rows r
    WHERE EXISTS (SELECT 1 FROM emails e WHERE position(e.email IN lower(r.values::text)) > 0)
       OR (r.export IN ('lms_learners', 'lms_enrollments') AND trim(r.values ->> 'learner_id') IN
               (SELECT source_record_id FROM ids WHERE source = 'legacy_lms'))
       OR (r.export = 'crm_contacts' AND (trim(r.values ->> 'contact_id') IN
               (SELECT source_record_id FROM ids WHERE source = 'legacy_crm')
            OR trim(r.values ->> 'lms_learner_id') IN (SELECT source_record_id FROM ids WHERE source = 'legacy_lms')))
$$;
REVOKE ALL ON FUNCTION privacy.legacy_rows_of(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.legacy_rows_of(uuid) TO cdp_admin;
