-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0012_privacy_erasure.sql.

-- Erasure. Removes or pseudonymises the person's personal data in core, raw, ops; keeps what financial
-- audit needs (donation amounts, currencies, dates, transaction ids, the pseudonymous person id they point
-- to). Consent history keeps its statements (who, when, which receipt: proof of lawful processing) minus
-- the parent's name and evidence, and gains a withdrawal per purpose. SECURITY DEFINER because it alone
-- may redact raw; admin only; one audit event with the counts.
-- The person's audit images are blanked last (so the images of the erasure's own changes go too), and the
-- erasure event names its subjects, which verify requires of every blanked image. The migration's ops
-- tables are erased by privacy.erase_person_ops, which cdp.privacy calls first in the same transaction.
CREATE OR REPLACE FUNCTION privacy.erase_person(p_person uuid, p_reason text) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_erasure_id text := 'erasure:' || gen_random_uuid();
    counts jsonb := '{}'::jsonb;
    n bigint;
BEGIN
    IF coalesce(trim(p_reason), '') = '' THEN
        RAISE EXCEPTION 'an erasure needs a reason (the request reference)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM core.person WHERE person_id = p_person) THEN
        RAISE EXCEPTION 'no person %', p_person USING ERRCODE = 'no_data_found';
    END IF;
    CREATE TEMP TABLE pg_temp.erase_targets ON COMMIT DROP AS SELECT privacy.person_and_merged(p_person) AS person_id;
    CREATE TEMP TABLE pg_temp.erase_raw ON COMMIT DROP AS SELECT privacy.raw_records_of(p_person) AS raw_id;
    CREATE TEMP TABLE pg_temp.erase_emails ON COMMIT DROP AS
        SELECT DISTINCT lower(email) AS email FROM core.person
        WHERE person_id IN (SELECT person_id FROM pg_temp.erase_targets) AND email IS NOT NULL AND length(email) >= 5;
    -- Households left with nobody else (not erased) in them lose their name and address, below.
    CREATE TEMP TABLE pg_temp.erase_households ON COMMIT DROP AS
        SELECT DISTINCT p.household_id FROM core.person p
        WHERE p.person_id IN (SELECT person_id FROM pg_temp.erase_targets) AND p.household_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM core.person o WHERE o.household_id = p.household_id
                          AND o.person_id NOT IN (SELECT person_id FROM pg_temp.erase_targets) AND o.erased_at IS NULL);
    -- What identifies the person in free text, taken before it is blanked. Contact details are matched in
    -- every audit image; names, birth date and address only in images that belong to no one (statements),
    -- so that another person's images are never blanked for sharing a first name.
    CREATE TEMP TABLE pg_temp.erase_needles ON COMMIT DROP AS
        SELECT DISTINCT lower(needle) AS needle, strong FROM (
            SELECT unnest(ARRAY[p.email, p.email_normalized, p.phone, p.phone_e164]) AS needle, true AS strong
            FROM core.person p WHERE p.person_id IN (SELECT person_id FROM pg_temp.erase_targets)
            UNION ALL
            SELECT unnest(ARRAY[p.given_name, p.family_name, p.date_of_birth::text]), false
            FROM core.person p WHERE p.person_id IN (SELECT person_id FROM pg_temp.erase_targets)
            UNION ALL
            SELECT unnest(ARRAY[h.name, h.street, h.locality, h.postcode]), false
            FROM core.household h WHERE h.household_id IN (SELECT household_id FROM pg_temp.erase_households)
        ) AS n
        WHERE length(trim(needle)) >= 3;

    PERFORM set_config('cdp.raw_redaction', 'on', true);
    UPDATE raw.records r
    SET payload = privacy.redact(r.payload)
                  || jsonb_build_object('_erased', jsonb_build_object('erasure_id', v_erasure_id, 'at', now()))
    WHERE r.raw_id IN (SELECT raw_id FROM pg_temp.erase_raw) AND NOT r.payload ? '_erased';
    GET DIAGNOSTICS n = ROW_COUNT;
    counts := counts || jsonb_build_object('raw_records_redacted', n);
    PERFORM set_config('cdp.raw_redaction', 'off', true);

    -- reason_value (revision 0020) holds a value of the record (or an id naming the person): blanked with it.
    UPDATE ops.quarantine q SET payload = privacy.redact(q.payload) || jsonb_build_object('_erased', v_erasure_id),
                                reason_value = NULL
    WHERE NOT q.payload ? '_erased'
      AND (EXISTS (SELECT 1 FROM pg_temp.erase_emails e WHERE position(e.email IN lower(q.payload::text)) > 0)
           OR EXISTS (SELECT 1 FROM core.person_source_id m WHERE m.person_id IN (SELECT person_id FROM pg_temp.erase_targets)
                      AND split_part(m.source, '.', 1) = q.source AND m.source_record_id = q.source_record_id));
    GET DIAGNOSTICS n = ROW_COUNT;
    counts := counts || jsonb_build_object('quarantine_redacted', n);

    UPDATE ops.webhook_rejection w SET body = NULL
    WHERE w.body IS NOT NULL AND EXISTS (SELECT 1 FROM pg_temp.erase_emails e WHERE position(e.email IN lower(w.body)) > 0);
    GET DIAGNOSTICS n = ROW_COUNT;
    counts := counts || jsonb_build_object('webhook_rejections_redacted', n);

    -- Signed deliveries kept as bytes (not JSON, so matched in their escaped text): the body goes, its size
    -- and digest stay, and the row counts as resolved.
    UPDATE ops.webhook_undeliverable u
    SET body = NULL, resolved_at = coalesce(u.resolved_at, now()),
        resolution = concat_ws('; ', u.resolution, 'body erased by ' || v_erasure_id)
    WHERE u.body IS NOT NULL
      AND EXISTS (SELECT 1 FROM pg_temp.erase_emails e WHERE position(e.email IN lower(encode(u.body, 'escape'))) > 0);
    GET DIAGNOSTICS n = ROW_COUNT;
    counts := counts || jsonb_build_object('webhook_undeliverable_erased', n);

    UPDATE core.survey_response s SET answers = privacy.redact(s.answers), age_reported = NULL, updated_at = now()
    WHERE s.person_id IN (SELECT person_id FROM pg_temp.erase_targets);
    GET DIAGNOSTICS n = ROW_COUNT;
    counts := counts || jsonb_build_object('survey_responses', n);

    UPDATE core.consent c SET given_by = NULL, evidence = '{}'::jsonb
    WHERE c.person_id IN (SELECT person_id FROM pg_temp.erase_targets) AND (c.given_by IS NOT NULL OR c.evidence <> '{}');
    INSERT INTO core.consent (person_id, purpose, status, lawful_basis, source, source_record_id, stated_at, evidence)
    SELECT p_person, purpose, 'withdrawn', 'erasure request', 'privacy.erase', v_erasure_id || ':' || purpose, now(),
           jsonb_build_object('erasure_id', v_erasure_id)
    FROM (VALUES ('course_messages'), ('fundraising'), ('surveys'), ('partner_sharing')) AS pu(purpose);

    -- Source ids that are themselves personal (a billing email used as key) become a one-way hash.
    UPDATE core.person_source_id m SET source_record_id = 'erased:' || encode(sha256(convert_to(m.source_record_id, 'UTF8')), 'hex')
    WHERE m.person_id IN (SELECT person_id FROM pg_temp.erase_targets) AND m.source_record_id LIKE '%@%';

    UPDATE core.household h SET name = NULL, street = NULL, locality = NULL, postcode = NULL, updated_at = now()
    WHERE h.household_id IN (SELECT household_id FROM pg_temp.erase_households);

    UPDATE core.person p
    SET given_name = NULL, family_name = NULL, date_of_birth = NULL, email = NULL, email_normalized = NULL,
        phone = NULL, phone_e164 = NULL, erased_at = coalesce(p.erased_at, now()), updated_at = now()
    WHERE p.person_id IN (SELECT person_id FROM pg_temp.erase_targets);
    GET DIAGNOSTICS n = ROW_COUNT;
    counts := counts || jsonb_build_object('people', n);

    SELECT count(*) INTO n FROM core.donation WHERE person_id IN (SELECT person_id FROM pg_temp.erase_targets);
    counts := counts || jsonb_build_object('donations_kept', n, 'erasure_id', v_erasure_id);

    -- Last, so that the images of the changes above (their before images hold the data) go too.
    PERFORM set_config('cdp.audit_image_erasure', 'on', true);
    UPDATE audit.personal_image i
    SET fields = NULL, salt = NULL, erased_at = now(), erasure_id = v_erasure_id
    WHERE i.fields IS NOT NULL
      AND (i.subject_id IN (SELECT person_id::text FROM pg_temp.erase_targets)
           OR i.subject_id IN (SELECT household_id::text FROM pg_temp.erase_households)
           OR EXISTS (SELECT 1 FROM pg_temp.erase_needles e
                      WHERE (e.strong OR i.subject_id IS NULL) AND position(e.needle IN lower(i.fields::text)) > 0));
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM set_config('cdp.audit_image_erasure', 'off', true);
    counts := counts || jsonb_build_object('audit_images_erased', n);

    PERFORM audit.record_event('privacy_erase', 'core.person', p_person::text,
                               counts || jsonb_build_object(
                                   'reason', p_reason,
                                   'subjects', (SELECT jsonb_agg(s ORDER BY s) FROM (
                                       SELECT person_id::text AS s FROM pg_temp.erase_targets
                                       UNION SELECT household_id::text FROM pg_temp.erase_households) AS subjects)));
    DROP TABLE pg_temp.erase_targets, pg_temp.erase_raw, pg_temp.erase_emails, pg_temp.erase_households, pg_temp.erase_needles;
    RETURN counts;
END
$$;
REVOKE ALL ON FUNCTION privacy.erase_person(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.erase_person(uuid, text) TO cdp_admin;
