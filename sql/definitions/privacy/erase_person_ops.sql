-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0014_crm_linking.sql; since then: the merge images and review notes
-- (revision 0028).

-- Erasure of what the migration's ops and raw tables hold about a person (the rows privacy.legacy_rows_of
-- finds, the referral spreadsheet rows, what the CRM push kept). cdp.privacy calls it before
-- privacy.erase_person, in the same transaction: it finds rows by the emails and legacy ids that
-- erase_person then blanks.
CREATE OR REPLACE FUNCTION privacy.erase_person_ops(p_person uuid, p_reason text) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    counts jsonb := '{}'::jsonb;
    marker jsonb := jsonb_build_object('_erased', jsonb_build_object('reason', p_reason, 'at', now()));
    n bigint;
BEGIN
    IF coalesce(trim(p_reason), '') = '' THEN
        RAISE EXCEPTION 'an erasure needs a reason (the request reference)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM core.person WHERE person_id = p_person) THEN
        RAISE EXCEPTION 'no person %', p_person USING ERRCODE = 'no_data_found';
    END IF;
    CREATE TEMP TABLE pg_temp.erase_ops_targets ON COMMIT DROP AS SELECT privacy.person_and_merged(p_person) AS person_id;
    CREATE TEMP TABLE pg_temp.erase_ops_emails ON COMMIT DROP AS
        SELECT DISTINCT lower(e) AS email FROM core.person p, unnest(ARRAY[p.email, p.email_normalized]) AS e
        WHERE p.person_id IN (SELECT person_id FROM pg_temp.erase_ops_targets) AND length(e) >= 5;
    CREATE TEMP TABLE pg_temp.erase_ops_legacy ON COMMIT DROP AS SELECT * FROM privacy.legacy_rows_of(p_person);

    UPDATE ops.legacy_clean_record c SET values = privacy.redact(c.values) || marker, updated_at = now()
    WHERE (c.export, c.row_key) IN (SELECT export, row_key FROM pg_temp.erase_ops_legacy)
      AND NOT coalesce(c.values ? '_erased', false);
    GET DIAGNOSTICS n = ROW_COUNT;
    counts := counts || jsonb_build_object('legacy_clean_records', n);

    UPDATE ops.legacy_review r SET payload = privacy.redact(r.payload) || marker
    WHERE (r.export, r.row_key) IN (SELECT export, row_key FROM pg_temp.erase_ops_legacy) AND NOT r.payload ? '_erased';
    GET DIAGNOSTICS n = ROW_COUNT;
    counts := counts || jsonb_build_object('legacy_reviews', n);

    -- The same rows as received (the privacy.raw_records_of email match misses a row whose email was broken).
    PERFORM set_config('cdp.raw_redaction', 'on', true);
    UPDATE raw.records r SET payload = privacy.redact(r.payload) || marker
    WHERE r.source = 'legacy' AND (r.stream, r.source_record_id) IN (SELECT export, row_key FROM pg_temp.erase_ops_legacy)
      AND NOT r.payload ? '_erased';
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM set_config('cdp.raw_redaction', 'off', true);
    counts := counts || jsonb_build_object('legacy_raw_records', n);

    UPDATE ops.referral_legacy l
    SET referrer_name = CASE WHEN lower(l.referrer_email) IN (SELECT email FROM pg_temp.erase_ops_emails) THEN '' ELSE l.referrer_name END,
        referrer_email = CASE WHEN lower(l.referrer_email) IN (SELECT email FROM pg_temp.erase_ops_emails)
                              THEN 'erased:' || encode(sha256(convert_to(lower(l.referrer_email), 'UTF8')), 'hex')
                              ELSE l.referrer_email END,
        referred_name = CASE WHEN lower(l.referred_email) IN (SELECT email FROM pg_temp.erase_ops_emails) THEN '' ELSE l.referred_name END,
        referred_email = CASE WHEN lower(l.referred_email) IN (SELECT email FROM pg_temp.erase_ops_emails)
                              THEN 'erased:' || encode(sha256(convert_to(lower(l.referred_email), 'UTF8')), 'hex')
                              ELSE l.referred_email END
    WHERE lower(l.referrer_email) IN (SELECT email FROM pg_temp.erase_ops_emails)
       OR lower(l.referred_email) IN (SELECT email FROM pg_temp.erase_ops_emails);
    GET DIAGNOSTICS n = ROW_COUNT;
    counts := counts || jsonb_build_object('legacy_referrals', n);

    -- The CRM push: what the CRM said about the person's records, and the unsalted hashes of their contact
    -- details (a hash of an email is guessable). The consent flags' hashes stay: the next push must still
    -- clear the flags in the CRM.
    UPDATE ops.crm_push_error SET message = '' WHERE person_id IN (SELECT person_id FROM pg_temp.erase_ops_targets) AND message <> '';
    GET DIAGNOSTICS n = ROW_COUNT;
    counts := counts || jsonb_build_object('crm_push_errors', n);
    UPDATE ops.crm_push_state SET field_hashes = field_hashes - ARRAY['FirstName', 'LastName', 'Email', 'Phone']
    WHERE person_id IN (SELECT person_id FROM pg_temp.erase_ops_targets)
      AND field_hashes ?| ARRAY['FirstName', 'LastName', 'Email', 'Phone'];
    UPDATE ops.crm_push_change SET crm_hash = NULL, new_hash = NULL
    WHERE person_id IN (SELECT person_id FROM pg_temp.erase_ops_targets) AND field IN ('FirstName', 'LastName', 'Email', 'Phone')
      AND (crm_hash IS NOT NULL OR new_hash IS NOT NULL);
    UPDATE ops.crm_push_conflict SET pushed_hash = NULL, crm_hash = NULL, warehouse_hash = NULL
    WHERE person_id IN (SELECT person_id FROM pg_temp.erase_ops_targets) AND field IN ('FirstName', 'LastName', 'Email', 'Phone')
      AND (pushed_hash IS NOT NULL OR crm_hash IS NOT NULL OR warehouse_hash IS NOT NULL);

    -- The dedupe's records (revision 0028): a merge's before-images of the person keep their ids and flags
    -- (unmerge still works) without the personal columns; a reviewer's note about a pair with the person goes.
    UPDATE ops.identity_merge m
    SET survivor_before = CASE WHEN m.survivor_id IN (SELECT person_id FROM pg_temp.erase_ops_targets)
                               THEN m.survivor_before || blank ELSE m.survivor_before END,
        absorbed_before = CASE WHEN m.absorbed_id IN (SELECT person_id FROM pg_temp.erase_ops_targets)
                               THEN m.absorbed_before || blank ELSE m.absorbed_before END
    FROM (SELECT pg_catalog.jsonb_object_agg(c.column_name, NULL::text) AS blank
          FROM audit.personal_column c WHERE c.table_name = 'core.person') AS personal(blank)
    WHERE m.survivor_id IN (SELECT person_id FROM pg_temp.erase_ops_targets)
       OR m.absorbed_id IN (SELECT person_id FROM pg_temp.erase_ops_targets);
    GET DIAGNOSTICS n = ROW_COUNT;
    counts := counts || jsonb_build_object('merge_images', n);
    UPDATE ops.identity_decision d SET note = NULL
    WHERE d.note IS NOT NULL
      AND (d.person_low IN (SELECT person_id FROM pg_temp.erase_ops_targets)
           OR d.person_high IN (SELECT person_id FROM pg_temp.erase_ops_targets));
    GET DIAGNOSTICS n = ROW_COUNT;
    counts := counts || jsonb_build_object('review_notes', n);

    PERFORM audit.record_event('privacy_erase_ops', 'core.person', p_person::text,
                               counts || jsonb_build_object('reason', p_reason));
    DROP TABLE pg_temp.erase_ops_targets, pg_temp.erase_ops_emails, pg_temp.erase_ops_legacy;
    RETURN counts;
END
$$;
REVOKE ALL ON FUNCTION privacy.erase_person_ops(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.erase_person_ops(uuid, text) TO cdp_admin;
