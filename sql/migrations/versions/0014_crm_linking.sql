-- 0014 migration phase 2: link learners to the Contacts that already exist in the CRM. A learner whose
-- Contact staff created in Salesforce (synced here through the salesforce.contact source identity) has no
-- CDP_Person_Id__c yet: an upsert by that external id would create a second Contact. The push first sets
-- the external id on the existing Contact by its Id; a person with two or more Contacts is not guessed at.
-- Only ops tables, no personal data: person ids and CRM record ids.
--
-- History: the views and functions below are as this revision made them. Today's definition of each is
-- in sql/definitions/, which `cdp migrate` re-applies after the revisions (sql/README.md).

-- One row per person and push run that planned a link: the Contact's Id and what became of it.
CREATE TABLE ops.crm_contact_link (
    run_id     text NOT NULL,
    person_id  uuid NOT NULL,
    crm_id     text NOT NULL,
    outcome    text NOT NULL CHECK (outcome IN ('planned', 'linked', 'failed')),
    error_code text,
    linked_at  timestamptz,
    PRIMARY KEY (run_id, person_id)
);
CREATE INDEX crm_contact_link_person ON ops.crm_contact_link (person_id);

-- People the push holds back because the CRM does not give one Contact for them: two or more Contacts
-- (a duplicate in the CRM: merge them there), or their one Contact carries another person's external id.
-- Open until the condition is gone; the next run then closes the row and links or pushes the person.
CREATE TABLE ops.crm_contact_review (
    review_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id       uuid NOT NULL,
    reason          text NOT NULL CHECK (reason IN ('duplicate_contacts', 'external_id_taken')),
    crm_ids         text[] NOT NULL,
    detected_run_id text NOT NULL,
    detected_at     timestamptz NOT NULL DEFAULT now(),
    last_run_id     text NOT NULL,
    resolved_at     timestamptz,
    resolved_run_id text
);
CREATE UNIQUE INDEX crm_contact_review_open ON ops.crm_contact_review (person_id) WHERE resolved_at IS NULL;

ALTER TABLE ops.crm_push_run
    ADD COLUMN links_planned     integer NOT NULL DEFAULT 0,
    ADD COLUMN linked            integer NOT NULL DEFAULT 0,
    ADD COLUMN link_failed       integer NOT NULL DEFAULT 0,
    ADD COLUMN contacts_in_review integer NOT NULL DEFAULT 0;

REVOKE ALL ON ops.crm_contact_link, ops.crm_contact_review FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON ops.crm_contact_link, ops.crm_contact_review TO cdp_loader;
GRANT DELETE ON ops.crm_contact_link TO cdp_loader;
GRANT SELECT ON ops.crm_contact_link, ops.crm_contact_review TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;

-- ---------------------------------------------------------------------------------------------------------
-- Erasure and export cover the migration's ops and raw tables (phases 1-2 and the referral spreadsheet).
-- privacy.erase_person (0005/0012) is left as it is: cdp.privacy calls these two in the same transaction,
-- erase_person_ops first (it finds the rows by the person's emails and legacy ids, which erase_person then
-- blanks). Personal data they reach: the legacy exports' rows (raw.records source 'legacy', their cleaned
-- values in ops.legacy_clean_record, the review queue's payloads), the referral spreadsheet rows
-- (ops.referral_legacy), and what the CRM push kept per person (error messages, unsalted value hashes).
-- ---------------------------------------------------------------------------------------------------------
CREATE FUNCTION privacy.legacy_rows_of(p_person uuid) RETURNS TABLE (export text, row_key text)
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

CREATE FUNCTION privacy.erase_person_ops(p_person uuid, p_reason text) RETURNS jsonb
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
    CREATE TEMP TABLE erase_ops_targets ON COMMIT DROP AS SELECT privacy.person_and_merged(p_person) AS person_id;
    CREATE TEMP TABLE erase_ops_emails ON COMMIT DROP AS
        SELECT DISTINCT lower(e) AS email FROM core.person p, unnest(ARRAY[p.email, p.email_normalized]) AS e
        WHERE p.person_id IN (SELECT person_id FROM erase_ops_targets) AND length(e) >= 5;
    CREATE TEMP TABLE erase_ops_legacy ON COMMIT DROP AS SELECT * FROM privacy.legacy_rows_of(p_person);

    UPDATE ops.legacy_clean_record c SET values = privacy.redact(c.values) || marker, updated_at = now()
    WHERE (c.export, c.row_key) IN (SELECT export, row_key FROM erase_ops_legacy)
      AND NOT coalesce(c.values ? '_erased', false);
    GET DIAGNOSTICS n = ROW_COUNT;
    counts := counts || jsonb_build_object('legacy_clean_records', n);

    UPDATE ops.legacy_review r SET payload = privacy.redact(r.payload) || marker
    WHERE (r.export, r.row_key) IN (SELECT export, row_key FROM erase_ops_legacy) AND NOT r.payload ? '_erased';
    GET DIAGNOSTICS n = ROW_COUNT;
    counts := counts || jsonb_build_object('legacy_reviews', n);

    -- The same rows as received (the privacy.raw_records_of email match misses a row whose email was broken).
    PERFORM set_config('cdp.raw_redaction', 'on', true);
    UPDATE raw.records r SET payload = privacy.redact(r.payload) || marker
    WHERE r.source = 'legacy' AND (r.stream, r.source_record_id) IN (SELECT export, row_key FROM erase_ops_legacy)
      AND NOT r.payload ? '_erased';
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM set_config('cdp.raw_redaction', 'off', true);
    counts := counts || jsonb_build_object('legacy_raw_records', n);

    UPDATE ops.referral_legacy l
    SET referrer_name = CASE WHEN lower(l.referrer_email) IN (SELECT email FROM erase_ops_emails) THEN '' ELSE l.referrer_name END,
        referrer_email = CASE WHEN lower(l.referrer_email) IN (SELECT email FROM erase_ops_emails)
                              THEN 'erased:' || encode(sha256(convert_to(lower(l.referrer_email), 'UTF8')), 'hex')
                              ELSE l.referrer_email END,
        referred_name = CASE WHEN lower(l.referred_email) IN (SELECT email FROM erase_ops_emails) THEN '' ELSE l.referred_name END,
        referred_email = CASE WHEN lower(l.referred_email) IN (SELECT email FROM erase_ops_emails)
                              THEN 'erased:' || encode(sha256(convert_to(lower(l.referred_email), 'UTF8')), 'hex')
                              ELSE l.referred_email END
    WHERE lower(l.referrer_email) IN (SELECT email FROM erase_ops_emails)
       OR lower(l.referred_email) IN (SELECT email FROM erase_ops_emails);
    GET DIAGNOSTICS n = ROW_COUNT;
    counts := counts || jsonb_build_object('legacy_referrals', n);

    -- The CRM push: what the CRM said about the person's records, and the unsalted hashes of their contact
    -- details (a hash of an email is guessable). The consent flags' hashes stay: the next push must still
    -- clear the flags in the CRM.
    UPDATE ops.crm_push_error SET message = '' WHERE person_id IN (SELECT person_id FROM erase_ops_targets) AND message <> '';
    GET DIAGNOSTICS n = ROW_COUNT;
    counts := counts || jsonb_build_object('crm_push_errors', n);
    UPDATE ops.crm_push_state SET field_hashes = field_hashes - ARRAY['FirstName', 'LastName', 'Email', 'Phone']
    WHERE person_id IN (SELECT person_id FROM erase_ops_targets)
      AND field_hashes ?| ARRAY['FirstName', 'LastName', 'Email', 'Phone'];
    UPDATE ops.crm_push_change SET crm_hash = NULL, new_hash = NULL
    WHERE person_id IN (SELECT person_id FROM erase_ops_targets) AND field IN ('FirstName', 'LastName', 'Email', 'Phone')
      AND (crm_hash IS NOT NULL OR new_hash IS NOT NULL);
    UPDATE ops.crm_push_conflict SET pushed_hash = NULL, crm_hash = NULL, warehouse_hash = NULL
    WHERE person_id IN (SELECT person_id FROM erase_ops_targets) AND field IN ('FirstName', 'LastName', 'Email', 'Phone')
      AND (pushed_hash IS NOT NULL OR crm_hash IS NOT NULL OR warehouse_hash IS NOT NULL);

    PERFORM audit.record_event('privacy_erase_ops', 'core.person', p_person::text,
                               counts || jsonb_build_object('reason', p_reason));
    DROP TABLE erase_ops_targets, erase_ops_emails, erase_ops_legacy;
    RETURN counts;
END
$$;

-- What the migration's ops tables hold about a person, for the data subject export.
CREATE FUNCTION privacy.export_person_ops(p_person uuid) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH targets AS (
        SELECT privacy.person_and_merged(p_person) AS person_id
    ), emails AS (
        SELECT DISTINCT lower(e) AS email FROM core.person p, unnest(ARRAY[p.email, p.email_normalized]) AS e
        WHERE p.person_id IN (SELECT person_id FROM targets) AND length(e) >= 5
    ), legacy AS (
        SELECT * FROM privacy.legacy_rows_of(p_person)
    )
    SELECT jsonb_build_object(
        'legacy_raw_records', (SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.raw_id), '[]') FROM raw.records r
                               WHERE r.source = 'legacy' AND (r.stream, r.source_record_id) IN (SELECT * FROM legacy)),
        'legacy_clean_records', (SELECT coalesce(jsonb_agg(to_jsonb(c) ORDER BY c.export, c.row_key), '[]')
                                 FROM ops.legacy_clean_record c WHERE (c.export, c.row_key) IN (SELECT * FROM legacy)),
        'legacy_reviews', (SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.review_id), '[]')
                           FROM ops.legacy_review r WHERE (r.export, r.row_key) IN (SELECT * FROM legacy)),
        'legacy_referrals', (SELECT coalesce(jsonb_agg(to_jsonb(l) ORDER BY l.legacy_ref), '[]') FROM ops.referral_legacy l
                             WHERE lower(l.referrer_email) IN (SELECT email FROM emails)
                                OR lower(l.referred_email) IN (SELECT email FROM emails)),
        'crm_push_state', (SELECT coalesce(jsonb_agg(to_jsonb(s)), '[]') FROM ops.crm_push_state s
                           WHERE s.person_id IN (SELECT person_id FROM targets)),
        'crm_push_errors', (SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY e.error_id), '[]') FROM ops.crm_push_error e
                            WHERE e.person_id IN (SELECT person_id FROM targets)),
        'crm_push_conflicts', (SELECT coalesce(jsonb_agg(to_jsonb(c) ORDER BY c.conflict_id), '[]')
                               FROM ops.crm_push_conflict c WHERE c.person_id IN (SELECT person_id FROM targets)),
        'crm_contact_links', (SELECT coalesce(jsonb_agg(to_jsonb(l) ORDER BY l.run_id), '[]') FROM ops.crm_contact_link l
                              WHERE l.person_id IN (SELECT person_id FROM targets)),
        'crm_contact_reviews', (SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.review_id), '[]')
                                FROM ops.crm_contact_review r WHERE r.person_id IN (SELECT person_id FROM targets))
    )
$$;

REVOKE ALL ON FUNCTION privacy.legacy_rows_of(uuid), privacy.erase_person_ops(uuid, text),
    privacy.export_person_ops(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.erase_person_ops(uuid, text), privacy.export_person_ops(uuid),
    privacy.legacy_rows_of(uuid) TO cdp_admin;
