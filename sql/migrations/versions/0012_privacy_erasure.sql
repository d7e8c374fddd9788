-- 0012 privacy erasure: erasure versus the append-only, hash-chained audit trail.
--
-- The trail may never be rewritten, yet `cdp privacy erase` must leave a person's personal data nowhere.
-- So personal data never enters the chain: the change trigger splits every row image in two. The public
-- part (ids, statuses, amounts, times) stays in audit.audit_events.before/after as before; the personal
-- fields (the columns listed in audit.personal_column) and the statement text go to audit.personal_image,
-- one sealed row per row image, referenced from the public image by "_personal": image_id. The seal is
-- sha256(salt || fields) with a random salt stored beside the fields, and the chained event carries, in
-- details, the image set's id and a digest over every image id and seal of the set; so the chain still
-- proves the images were neither edited nor removed, while the seal alone (salt gone) reveals nothing.
-- Erasure blanks the person's images (fields and salt to NULL, seal kept, erasure id noted): the chain and
-- every seal still verify, the erasure is itself a chained event naming the images' subjects, and what
-- remains says that a change happened, when, by which role and actor, to which (pseudonymous) person id.
-- (The design that was weighed: crypto-shredding with a per-person key. No pgcrypto here, and a trigger
-- cannot call Python, so encrypting inside the database would mean home-made crypto; the salted seal and
-- a blanked row give the same guarantee with sha256() alone.)
-- Images chained before this revision are as they were (the chain forbids rewriting them); a database
-- migrated from empty, as every deployment so far, has none.
--
-- History: the views and functions below are as this revision made them. Today's definition of each is
-- in sql/definitions/, which `cdp migrate` re-applies after the revisions (sql/README.md).

-- ---------------------------------------------------------------------------------------------------------
-- Which columns of which audited tables are personal. A catalog test checks that every core column whose
-- name looks personal is listed; add rows here (in a migration) with any new such column.
-- ---------------------------------------------------------------------------------------------------------
CREATE TABLE audit.personal_column (
    table_name  text NOT NULL,
    column_name text NOT NULL,
    PRIMARY KEY (table_name, column_name)
);
COMMENT ON TABLE audit.personal_column IS
    'Columns whose values the change trigger keeps out of the audit chain (in audit.personal_image).';
INSERT INTO audit.personal_column (table_name, column_name)
SELECT t, c
FROM (VALUES
    ('core.person', 'given_name'), ('core.person', 'family_name'), ('core.person', 'date_of_birth'),
    ('core.person', 'email'), ('core.person', 'email_normalized'), ('core.person', 'phone'),
    ('core.person', 'phone_e164'),
    ('core.household', 'name'), ('core.household', 'street'), ('core.household', 'locality'),
    ('core.household', 'postcode'),
    ('core.person_source_id', 'source_record_id'),   -- some sources key people by email
    ('core.consent', 'given_by'), ('core.consent', 'evidence'),
    ('core.survey_response', 'answers')
) AS personal(t, c);

-- ---------------------------------------------------------------------------------------------------------
-- audit.personal_image: outside the chain, append-only; the one change allowed is an erasure's blanking.
-- ---------------------------------------------------------------------------------------------------------
CREATE TABLE audit.personal_image (
    image_id    uuid PRIMARY KEY,
    image_set   uuid NOT NULL,        -- one change event: details ->> 'personal_images'
    ordinal     integer NOT NULL,     -- 0: the statement; 1..n: the row images
    subject_id  text,                 -- the person (or household) the row is about; kept after erasure
    fields      jsonb,                -- the personal fields; NULL once erased
    salt        text,                 -- NULL once erased
    seal        text NOT NULL,        -- sha256(salt || fields::text), hex; kept after erasure
    recorded_at timestamptz NOT NULL DEFAULT now(),
    erased_at   timestamptz,
    erasure_id  text,
    UNIQUE (image_set, ordinal),
    CHECK ((erased_at IS NULL) = (fields IS NOT NULL AND salt IS NOT NULL AND erasure_id IS NULL))
);
CREATE INDEX personal_image_subject ON audit.personal_image (subject_id) WHERE fields IS NOT NULL;
COMMENT ON TABLE audit.personal_image IS
    'Personal fields of audited row images and statements, sealed into the chain by digest; erasable.';

CREATE FUNCTION audit.guard_personal_image() RETURNS trigger
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
CREATE TRIGGER guard_update_delete BEFORE UPDATE OR DELETE ON audit.personal_image
    FOR EACH ROW EXECUTE FUNCTION audit.guard_personal_image();
CREATE TRIGGER guard_truncate BEFORE TRUNCATE ON audit.personal_image
    FOR EACH STATEMENT EXECUTE FUNCTION audit.guard_personal_image();

-- The change trigger runs as whoever changed the row, so every application role may add images; only
-- admin reads them (they are personal data), and nobody may change them but privacy.erase_person.
REVOKE ALL ON audit.personal_column, audit.personal_image FROM PUBLIC;
GRANT SELECT ON audit.personal_column
    TO cdp_loader, cdp_viewer, cdp_editor, cdp_admin, cdp_finance, cdp_partner;
GRANT INSERT ON audit.personal_image TO cdp_loader, cdp_viewer, cdp_editor, cdp_admin, cdp_finance, cdp_partner;
GRANT SELECT ON audit.personal_image TO cdp_admin;

-- ---------------------------------------------------------------------------------------------------------
-- The change trigger, now splitting each row image (same triggers, same one event per statement).
-- ---------------------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION audit.record_change() RETURNS trigger
    LANGUAGE plpgsql
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

    INSERT INTO audit.audit_events (seq, occurred_at, db_role, session_role, action, entity_type, entity_id,
                                    before, after, details, txid, prev_hash, hash)
    VALUES (0, now(), '', '', lower(TG_OP), target,
            CASE WHEN changed = 1 THEN
                 CASE WHEN key_column = ANY (personal) THEN coalesce(first_row ->> 'person_id', first_row ->> 'household_id')
                      ELSE first_row ->> key_column END
            END,
            rows_before, rows_after,
            jsonb_build_object('rows', changed, 'personal_images', image_set, 'personal_digest', set_digest),
            0, '', '');
    RETURN NULL;
END
$$;

-- ---------------------------------------------------------------------------------------------------------
-- Reading and verifying the images.
-- ---------------------------------------------------------------------------------------------------------
-- A chained image array with the personal fields put back (or, for an erased image, the erasure's id in
-- their place): what an auditor reads. Runs as the caller, so only admin gets past the personal images.
CREATE FUNCTION audit.with_personal_fields(images jsonb) RETURNS jsonb
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
CREATE FUNCTION audit.personal_image_seals() RETURNS TABLE (
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
GRANT EXECUTE ON FUNCTION audit.personal_image_seals()
    TO cdp_loader, cdp_viewer, cdp_editor, cdp_admin, cdp_finance;

-- ---------------------------------------------------------------------------------------------------------
-- Erasure, as in 0005, plus: the person's audit images are blanked (after every other step, so the images
-- of the erasure's own changes go too), and the erasure event names its subjects, which verify requires
-- of every blanked image. Who may erase (admin) and what is kept for finance are unchanged.
-- ---------------------------------------------------------------------------------------------------------
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
    CREATE TEMP TABLE erase_targets ON COMMIT DROP AS SELECT privacy.person_and_merged(p_person) AS person_id;
    CREATE TEMP TABLE erase_raw ON COMMIT DROP AS SELECT privacy.raw_records_of(p_person) AS raw_id;
    CREATE TEMP TABLE erase_emails ON COMMIT DROP AS
        SELECT DISTINCT lower(email) AS email FROM core.person
        WHERE person_id IN (SELECT person_id FROM erase_targets) AND email IS NOT NULL AND length(email) >= 5;
    -- Households left with nobody else (not erased) in them lose their name and address, below.
    CREATE TEMP TABLE erase_households ON COMMIT DROP AS
        SELECT DISTINCT p.household_id FROM core.person p
        WHERE p.person_id IN (SELECT person_id FROM erase_targets) AND p.household_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM core.person o WHERE o.household_id = p.household_id
                          AND o.person_id NOT IN (SELECT person_id FROM erase_targets) AND o.erased_at IS NULL);
    -- What identifies the person in free text, taken before it is blanked. Contact details are matched in
    -- every audit image; names, birth date and address only in images that belong to no one (statements),
    -- so that another person's images are never blanked for sharing a first name.
    CREATE TEMP TABLE erase_needles ON COMMIT DROP AS
        SELECT DISTINCT lower(needle) AS needle, strong FROM (
            SELECT unnest(ARRAY[p.email, p.email_normalized, p.phone, p.phone_e164]) AS needle, true AS strong
            FROM core.person p WHERE p.person_id IN (SELECT person_id FROM erase_targets)
            UNION ALL
            SELECT unnest(ARRAY[p.given_name, p.family_name, p.date_of_birth::text]), false
            FROM core.person p WHERE p.person_id IN (SELECT person_id FROM erase_targets)
            UNION ALL
            SELECT unnest(ARRAY[h.name, h.street, h.locality, h.postcode]), false
            FROM core.household h WHERE h.household_id IN (SELECT household_id FROM erase_households)
        ) AS n
        WHERE length(trim(needle)) >= 3;

    PERFORM set_config('cdp.raw_redaction', 'on', true);
    UPDATE raw.records r
    SET payload = privacy.redact(r.payload)
                  || jsonb_build_object('_erased', jsonb_build_object('erasure_id', v_erasure_id, 'at', now()))
    WHERE r.raw_id IN (SELECT raw_id FROM erase_raw) AND NOT r.payload ? '_erased';
    GET DIAGNOSTICS n = ROW_COUNT;
    counts := counts || jsonb_build_object('raw_records_redacted', n);
    PERFORM set_config('cdp.raw_redaction', 'off', true);

    UPDATE ops.quarantine q SET payload = privacy.redact(q.payload) || jsonb_build_object('_erased', v_erasure_id)
    WHERE NOT q.payload ? '_erased'
      AND (EXISTS (SELECT 1 FROM erase_emails e WHERE position(e.email IN lower(q.payload::text)) > 0)
           OR EXISTS (SELECT 1 FROM core.person_source_id m WHERE m.person_id IN (SELECT person_id FROM erase_targets)
                      AND split_part(m.source, '.', 1) = q.source AND m.source_record_id = q.source_record_id));
    GET DIAGNOSTICS n = ROW_COUNT;
    counts := counts || jsonb_build_object('quarantine_redacted', n);

    UPDATE ops.webhook_rejection w SET body = NULL
    WHERE w.body IS NOT NULL AND EXISTS (SELECT 1 FROM erase_emails e WHERE position(e.email IN lower(w.body)) > 0);
    GET DIAGNOSTICS n = ROW_COUNT;
    counts := counts || jsonb_build_object('webhook_rejections_redacted', n);

    UPDATE core.survey_response s SET answers = privacy.redact(s.answers), age_reported = NULL, updated_at = now()
    WHERE s.person_id IN (SELECT person_id FROM erase_targets);
    GET DIAGNOSTICS n = ROW_COUNT;
    counts := counts || jsonb_build_object('survey_responses', n);

    UPDATE core.consent c SET given_by = NULL, evidence = '{}'::jsonb
    WHERE c.person_id IN (SELECT person_id FROM erase_targets) AND (c.given_by IS NOT NULL OR c.evidence <> '{}');
    INSERT INTO core.consent (person_id, purpose, status, lawful_basis, source, source_record_id, stated_at, evidence)
    SELECT p_person, purpose, 'withdrawn', 'erasure request', 'privacy.erase', v_erasure_id || ':' || purpose, now(),
           jsonb_build_object('erasure_id', v_erasure_id)
    FROM (VALUES ('course_messages'), ('fundraising'), ('surveys'), ('partner_sharing')) AS pu(purpose);

    -- Source ids that are themselves personal (a billing email used as key) become a one-way hash.
    UPDATE core.person_source_id m SET source_record_id = 'erased:' || encode(sha256(convert_to(m.source_record_id, 'UTF8')), 'hex')
    WHERE m.person_id IN (SELECT person_id FROM erase_targets) AND m.source_record_id LIKE '%@%';

    UPDATE core.household h SET name = NULL, street = NULL, locality = NULL, postcode = NULL, updated_at = now()
    WHERE h.household_id IN (SELECT household_id FROM erase_households);

    UPDATE core.person p
    SET given_name = NULL, family_name = NULL, date_of_birth = NULL, email = NULL, email_normalized = NULL,
        phone = NULL, phone_e164 = NULL, erased_at = coalesce(p.erased_at, now()), updated_at = now()
    WHERE p.person_id IN (SELECT person_id FROM erase_targets);
    GET DIAGNOSTICS n = ROW_COUNT;
    counts := counts || jsonb_build_object('people', n);

    SELECT count(*) INTO n FROM core.donation WHERE person_id IN (SELECT person_id FROM erase_targets);
    counts := counts || jsonb_build_object('donations_kept', n, 'erasure_id', v_erasure_id);

    -- Last, so that the images of the changes above (their before images hold the data) go too.
    PERFORM set_config('cdp.audit_image_erasure', 'on', true);
    UPDATE audit.personal_image i
    SET fields = NULL, salt = NULL, erased_at = now(), erasure_id = v_erasure_id
    WHERE i.fields IS NOT NULL
      AND (i.subject_id IN (SELECT person_id::text FROM erase_targets)
           OR i.subject_id IN (SELECT household_id::text FROM erase_households)
           OR EXISTS (SELECT 1 FROM erase_needles e
                      WHERE (e.strong OR i.subject_id IS NULL) AND position(e.needle IN lower(i.fields::text)) > 0));
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM set_config('cdp.audit_image_erasure', 'off', true);
    counts := counts || jsonb_build_object('audit_images_erased', n);

    PERFORM audit.record_event('privacy_erase', 'core.person', p_person::text,
                               counts || jsonb_build_object(
                                   'reason', p_reason,
                                   'subjects', (SELECT jsonb_agg(s ORDER BY s) FROM (
                                       SELECT person_id::text AS s FROM erase_targets
                                       UNION SELECT household_id::text FROM erase_households) AS subjects)));
    DROP TABLE erase_targets, erase_raw, erase_emails, erase_households, erase_needles;
    RETURN counts;
END
$$;
REVOKE ALL ON FUNCTION privacy.erase_person(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.erase_person(uuid, text) TO cdp_admin;
REVOKE ALL ON FUNCTION privacy.erase_person(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.erase_person(uuid, text) TO cdp_admin;
