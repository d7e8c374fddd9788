-- 0005 access and consent: the age rules per jurisdiction, mart.outreach_eligible (the one path to any
-- outreach list), role privileges per object, row-level security for partner organisations, the data
-- subject request functions (export, erase) and the webhook intake tables.
--
-- Privileges are granted and revoked per object named here, never for a whole schema, so that grants made
-- by other revisions on their own objects survive.
--
-- History: the views and functions below are as this revision made them. Today's definition of each is
-- in sql/definitions/, which `cdp migrate` re-applies after the revisions (sql/README.md).

-- ---------------------------------------------------------------------------------------------------------
-- One more application role: outreach tools (mailing list builders) read mart.outreach_eligible and nothing
-- else. Cluster-wide, so created only when missing; like the others it cannot log in by itself.
-- ---------------------------------------------------------------------------------------------------------
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cdp_outreach') THEN
        CREATE ROLE cdp_outreach NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA mart TO cdp_outreach;

-- Functions of the privacy machinery live in their own schema (no tables in it).
CREATE SCHEMA privacy;
REVOKE ALL ON SCHEMA privacy FROM PUBLIC;
GRANT USAGE ON SCHEMA privacy
    TO cdp_loader, cdp_viewer, cdp_editor, cdp_admin, cdp_finance, cdp_partner, cdp_outreach;

-- ---------------------------------------------------------------------------------------------------------
-- Age rules. Below a jurisdiction's age of consent a person's own "given" does not count: only verified
-- parental consent does. Values are the digital ages of consent the EU member states chose under GDPR
-- art. 8 (13–16), the UK's 13, COPPA's 13 for the US; anywhere else 18 (row DEFAULT). The floor of 13 is
-- COPPA's and holds everywhere (CHECK). Reviewed by counsel before production; add rows, never code.
-- ---------------------------------------------------------------------------------------------------------
CREATE TABLE core.consent_age_rule (
    jurisdiction   text PRIMARY KEY CHECK (jurisdiction = upper(jurisdiction)),
    age_of_consent integer NOT NULL CHECK (age_of_consent BETWEEN 13 AND 18),
    law            text NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE core.consent_age_rule IS
    'Age at or above which a person''s own consent counts, per jurisdiction (ISO country code); DEFAULT for the rest.';

INSERT INTO core.consent_age_rule (jurisdiction, age_of_consent, law)
SELECT j, a, l
FROM (VALUES
    ('DEFAULT', 18, 'default: adults only'),
    ('US', 13, 'COPPA'),
    ('GB', 13, 'UK GDPR / Data Protection Act 2018 s.9'),
    ('BE', 13, 'GDPR art. 8'), ('DK', 13, 'GDPR art. 8'), ('EE', 13, 'GDPR art. 8'), ('FI', 13, 'GDPR art. 8'),
    ('LV', 13, 'GDPR art. 8'), ('MT', 13, 'GDPR art. 8'), ('PT', 13, 'GDPR art. 8'), ('SE', 13, 'GDPR art. 8'),
    ('AT', 14, 'GDPR art. 8'), ('BG', 14, 'GDPR art. 8'), ('CY', 14, 'GDPR art. 8'), ('ES', 14, 'GDPR art. 8'),
    ('IT', 14, 'GDPR art. 8'), ('LT', 14, 'GDPR art. 8'),
    ('CZ', 15, 'GDPR art. 8'), ('FR', 15, 'GDPR art. 8'), ('GR', 15, 'GDPR art. 8'), ('SI', 15, 'GDPR art. 8'),
    ('DE', 16, 'GDPR art. 8'), ('HR', 16, 'GDPR art. 8'), ('HU', 16, 'GDPR art. 8'), ('IE', 16, 'GDPR art. 8'),
    ('LU', 16, 'GDPR art. 8'), ('NL', 16, 'GDPR art. 8'), ('PL', 16, 'GDPR art. 8'), ('RO', 16, 'GDPR art. 8'),
    ('SK', 16, 'GDPR art. 8')
) AS rules(j, a, l)
ON CONFLICT (jurisdiction) DO NOTHING;
-- Tracked from here on: the seeded rules are part of the schema, later edits are audited.
SELECT audit.track_changes('core.consent_age_rule', 'jurisdiction');

-- Erased people keep their id (donations point to it) but no personal data; see privacy.erase_person.
ALTER TABLE core.person ADD COLUMN erased_at timestamptz;

-- A sync that re-sends an erased person (the source still has them) must not bring the data back.
CREATE FUNCTION privacy.keep_erased_person_blank() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    NEW.given_name := NULL;
    NEW.family_name := NULL;
    NEW.date_of_birth := NULL;
    NEW.email := NULL;
    NEW.email_normalized := NULL;
    NEW.phone := NULL;
    NEW.phone_e164 := NULL;
    NEW.erased_at := OLD.erased_at;
    RETURN NEW;
END
$$;
CREATE TRIGGER keep_erased_person_blank BEFORE UPDATE ON core.person
    FOR EACH ROW WHEN (OLD.erased_at IS NOT NULL) EXECUTE FUNCTION privacy.keep_erased_person_blank();

-- ---------------------------------------------------------------------------------------------------------
-- Consent decisions. Per person (merged-away records roll up to their survivor) and purpose: the latest
-- explicit statement wins (history rows are never overwritten); a minor, below the jurisdiction's age of
-- consent, needs verified parental consent not withdrawn since; unknown age counts as a minor and, with
-- nothing to compare to, is never eligible. refusal_reason NULL means eligible.
-- ---------------------------------------------------------------------------------------------------------
CREATE VIEW mart.outreach_decision AS
WITH statements AS (
    SELECT coalesce(owner.merged_into, c.person_id) AS person_id, c.purpose, c.status, c.stated_at,
           c.recorded_at, c.consent_id, c.lawful_basis, c.receipt_id, c.source
    FROM core.consent c
    JOIN core.person owner ON owner.person_id = c.person_id
), latest AS (
    SELECT DISTINCT ON (person_id, purpose) *
    FROM statements
    ORDER BY person_id, purpose, stated_at DESC, recorded_at DESC, consent_id DESC
), parental AS (
    SELECT person_id, purpose,
           max(stated_at) FILTER (WHERE status = 'parental_consent_verified') AS verified_at,
           max(stated_at) FILTER (WHERE status IN ('refused', 'withdrawn')) AS negative_at
    FROM statements
    GROUP BY person_id, purpose
), people AS (
    SELECT p.person_id, p.erased_at,
           CASE WHEN p.date_of_birth IS NOT NULL
                THEN extract(year FROM age(current_date, p.date_of_birth))::integer END AS age,
           coalesce(rule.age_of_consent, fallback.age_of_consent) AS age_of_consent
    FROM core.person p
    JOIN core.consent_age_rule fallback ON fallback.jurisdiction = 'DEFAULT'
    LEFT JOIN core.consent_age_rule rule ON rule.jurisdiction = upper(p.jurisdiction)
    WHERE p.merged_into IS NULL
)
SELECT pe.person_id, pu.purpose, pe.age, pe.age_of_consent, l.status AS latest_status,
       l.stated_at, l.lawful_basis, l.receipt_id, l.source AS consent_source,
       CASE
           WHEN pe.erased_at IS NOT NULL THEN 'erased'
           WHEN l.status IS NULL THEN 'no_statement'
           WHEN l.status NOT IN ('given', 'parental_consent_verified') THEN 'latest_statement_' || l.status
           WHEN pe.age IS NULL THEN 'age_unknown'
           WHEN pe.age < pe.age_of_consent
                AND NOT (pa.verified_at IS NOT NULL AND (pa.negative_at IS NULL OR pa.verified_at > pa.negative_at))
               THEN 'minor_without_verified_parental_consent'
       END AS refusal_reason
FROM people pe
CROSS JOIN (VALUES ('course_messages'), ('fundraising'), ('surveys'), ('partner_sharing')) AS pu(purpose)
LEFT JOIN latest l ON l.person_id = pe.person_id AND l.purpose = pu.purpose
LEFT JOIN parental pa ON pa.person_id = pe.person_id AND pa.purpose = pu.purpose;
COMMENT ON VIEW mart.outreach_decision IS
    'Why each person may or may not be contacted for each purpose (no contact details). NULL reason = eligible.';

-- The only way to any outreach list. security_barrier: a caller's WHERE cannot peek past the filter.
CREATE VIEW mart.outreach_eligible WITH (security_barrier) AS
SELECT d.person_id, d.purpose, p.email, p.given_name, p.family_name, p.phone_e164, p.jurisdiction,
       d.latest_status AS consent_status, d.stated_at AS consent_stated_at, d.lawful_basis, d.receipt_id
FROM mart.outreach_decision d
JOIN core.person p ON p.person_id = d.person_id
WHERE d.refusal_reason IS NULL
  AND p.email IS NOT NULL;
COMMENT ON VIEW mart.outreach_eligible IS
    'People who may be contacted, per purpose, with the contact details to do it. Every outreach list reads this.';

-- ---------------------------------------------------------------------------------------------------------
-- Partner organisations. A partner login is bound to its organisation(s) here; a session names the
-- partner it acts for in the setting cdp.partner_organization_id. The setting alone is not trusted (any
-- session can set it): it counts only for an organisation bound to the session's login.
-- ---------------------------------------------------------------------------------------------------------
CREATE TABLE core.partner_login (
    login_role      name NOT NULL,
    organization_id uuid NOT NULL REFERENCES core.organization,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (login_role, organization_id)
);
SELECT audit.track_changes('core.partner_login', 'login_role');

CREATE FUNCTION privacy.current_partner() RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pl.organization_id
    FROM core.partner_login pl
    WHERE pl.login_role = session_user
      AND pl.organization_id::text = lower(nullif(current_setting('cdp.partner_organization_id', true), ''))
$$;
REVOKE ALL ON FUNCTION privacy.current_partner() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.current_partner()
    TO cdp_loader, cdp_viewer, cdp_editor, cdp_admin, cdp_finance, cdp_partner;

-- Row-level security, forced, on every table that holds a partner's learners. Staff roles (and the owner
-- that runs the migrations and owns the mart views) see every row; a partner only its own; any other role
-- none.
DO $$
DECLARE
    target text;
    partner_rule text;
BEGIN
    FOR target, partner_rule IN
        SELECT * FROM (VALUES
            ('core.organization', 'organization_id = privacy.current_partner()'),
            ('core.organization_membership', 'organization_id = privacy.current_partner()'),
            ('core.enrollment', 'organization_id = privacy.current_partner()'),
            ('core.course_completion',
             'EXISTS (SELECT 1 FROM core.enrollment e WHERE e.person_id = course_completion.person_id'
             ' AND e.course_id = course_completion.course_id AND e.organization_id = privacy.current_partner())'),
            ('core.certificate',
             'EXISTS (SELECT 1 FROM core.enrollment e WHERE e.person_id = certificate.person_id'
             ' AND e.course_id = certificate.course_id AND e.organization_id = privacy.current_partner())'),
            ('core.person',
             'person_id IN (SELECT m.person_id FROM core.organization_membership m'
             ' WHERE m.organization_id = privacy.current_partner())')
        ) AS t(target, partner_rule)
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', target);
        EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', target);
        EXECUTE format('CREATE POLICY staff_all_rows ON %s TO cdp_loader, cdp_viewer, cdp_editor, cdp_admin, '
                       'cdp_finance, %I USING (true) WITH CHECK (true)', target, current_user);
        EXECUTE format('CREATE POLICY partner_own_rows ON %s TO cdp_partner USING (%s) WITH CHECK (%s)',
                       target, partner_rule, partner_rule);
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------------------------------------
-- Privileges per role (on top of 0001's coarse grants).
--   viewer   reads core, mart and ops, but neither consent statements nor contact details;
--   editor   (program staff) as viewer, plus names; writes courses, enrollments, progress, organisations;
--            reads donations, never changes them;
--   finance  as viewer; changes donations and refunds (approved corrections);
--   admin    reads everything (contact, consent, raw, audit), writes and deletes in core, and alone runs
--            the data subject requests (export, erase) and creates logins;
--   partner  reads its own learners' rows (RLS) and registers them in its cohorts;
--   loader   (Airflow) writes raw and core; the only role that writes raw;
--   outreach reads mart.outreach_eligible and nothing else.
-- Nobody but admin and the loader (the pipeline, whose code a test scans) reads consent and contact
-- details together, so no list can be built around the view.
-- ---------------------------------------------------------------------------------------------------------
REVOKE SELECT ON core.consent FROM cdp_viewer, cdp_editor, cdp_finance, cdp_partner;

REVOKE SELECT ON core.person FROM cdp_viewer, cdp_editor, cdp_finance, cdp_partner;
GRANT SELECT (person_id, household_id, country, jurisdiction, is_learner, is_donor, merged_into, created_at,
              updated_at, erased_at)
    ON core.person TO cdp_viewer, cdp_editor, cdp_finance;
GRANT SELECT (given_name, family_name) ON core.person TO cdp_editor;
GRANT SELECT (person_id, given_name, family_name) ON core.person TO cdp_partner;

REVOKE SELECT ON core.household FROM cdp_viewer, cdp_editor, cdp_finance, cdp_partner;
GRANT SELECT (household_id, region, country, created_at, updated_at)
    ON core.household TO cdp_viewer, cdp_editor, cdp_finance;

-- Typeform answers carry the respondent's email: only the derived columns for non-admins.
REVOKE SELECT ON core.survey_response FROM cdp_viewer, cdp_editor, cdp_finance, cdp_partner;
GRANT SELECT (survey_response_id, person_id, survey_id, submitted_at, age_reported, source, source_record_id,
              updated_at)
    ON core.survey_response TO cdp_viewer, cdp_editor, cdp_finance;

GRANT SELECT ON core.consent_age_rule, core.partner_login TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
GRANT SELECT ON core.consent_age_rule TO cdp_loader;
GRANT SELECT, INSERT, UPDATE, DELETE ON core.consent_age_rule, core.partner_login TO cdp_admin;

GRANT INSERT, UPDATE ON core.course, core.enrollment, core.course_completion, core.certificate,
    core.organization, core.organization_membership TO cdp_editor;

GRANT UPDATE ON core.donation, core.refund TO cdp_finance;

-- Deleting people, their consent history, their gifts or their answers is an erasure: admin's, through
-- privacy.erase_person. The pipeline upserts and never deletes them.
REVOKE DELETE ON core.person, core.consent, core.donation, core.survey_response FROM cdp_loader;

GRANT SELECT ON raw.records TO cdp_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON
    core.household, core.person, core.person_source_id, core.organization, core.organization_membership,
    core.course, core.enrollment, core.course_completion, core.certificate, core.donation,
    core.donation_soft_credit, core.consent, core.survey_response, core.referral, core.reward,
    core.balance_transaction, core.refund, core.ledger_posting
    TO cdp_admin;

GRANT SELECT ON core.organization, core.organization_membership, core.enrollment, core.course_completion,
    core.certificate, core.course TO cdp_partner;
GRANT INSERT, UPDATE ON core.organization_membership TO cdp_partner;

GRANT SELECT ON mart.outreach_decision TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
GRANT SELECT ON mart.outreach_eligible TO cdp_outreach, cdp_admin;

-- ---------------------------------------------------------------------------------------------------------
-- Webhook intake. The payload goes to raw.records (stream 'webhook') in the same statement that claims its
-- event id here, before the sender gets its 2xx; processed_at is set when the pipeline has fed it through
-- the survey mappings. Rejected requests are kept with their reason (the body too, unless oversized).
-- ---------------------------------------------------------------------------------------------------------
CREATE TABLE ops.webhook_event (
    source           text NOT NULL,
    event_id         text NOT NULL,
    form_id          text NOT NULL,
    stream           text NOT NULL,       -- the survey stream whose mapping processes it
    record_id        text,                -- the response / submission id inside the payload
    event_time       timestamptz,
    received_at      timestamptz NOT NULL DEFAULT now(),
    processed_at     timestamptz,
    processed_run_id text,
    PRIMARY KEY (source, event_id)
);
CREATE INDEX webhook_event_pending ON ops.webhook_event (source, stream, received_at) WHERE processed_at IS NULL;

CREATE TABLE ops.webhook_rejection (
    rejection_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    source       text NOT NULL,
    status_code  integer NOT NULL CHECK (status_code BETWEEN 400 AND 499),
    reason       text NOT NULL,
    content_type text,
    body_bytes   bigint NOT NULL,
    body_sha256  text NOT NULL,
    body         text                 -- NULL when oversized or not UTF-8
);
CREATE INDEX webhook_rejection_source ON ops.webhook_rejection (source, received_at);

GRANT SELECT, INSERT, UPDATE ON ops.webhook_event, ops.webhook_rejection TO cdp_loader;
GRANT SELECT ON ops.webhook_event, ops.webhook_rejection TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
GRANT UPDATE ON ops.webhook_rejection TO cdp_admin;

-- ---------------------------------------------------------------------------------------------------------
-- raw stays append-only, with one exception: an erasure may overwrite a payload with its redacted version
-- (same row, same source, stream, id, run and time), and only while privacy.erase_person runs (it sets
-- cdp.raw_redaction for its own transaction). No application role holds UPDATE on raw.records at all, so
-- the only way there is that function, which only admin may execute and which audits what it did.
-- ---------------------------------------------------------------------------------------------------------
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

-- Keeps the values of keys that identify records and money (ids, amounts, currencies, times, statuses)
-- and nulls every other scalar, at any depth: what financial audit needs survives, personal data does not.
CREATE FUNCTION privacy.redact(value jsonb) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN CASE jsonb_typeof(value)
        WHEN 'object' THEN coalesce((
            SELECT jsonb_object_agg(key, CASE
                WHEN jsonb_typeof(item) IN ('object', 'array') THEN privacy.redact(item)
                WHEN key = ANY (ARRAY[
                    'id', '_id', 'object', 'type', 'status', 'amount', 'amount_captured', 'amount_refunded',
                    'amount_minor', 'currency', 'fee', 'net', 'created', 'created_at', 'createdAt', 'updated',
                    'balance_transaction', 'financial_transaction_id', 'payment_intent', 'charge', 'refunded',
                    'paid', 'captured', 'livemode', 'event_id', 'event_type', 'token', 'response_id',
                    'landing_id', 'submitted_at', 'landed_at', 'form_id', 'pollId', 'accountId', 'courseid',
                    'course', 'timestart', 'timeend', 'timecreated', 'timemodified', 'timecompleted', 'ref',
                    'reference', 'posting_date', 'account', 'close_date', 'CloseDate', 'Amount', 'StageName',
                    'Id', 'npe01__Payment_Amount__c', '_erased'])
                    THEN item
                ELSE 'null'::jsonb END)
            FROM jsonb_each(value) AS e(key, item)), '{}'::jsonb)
        WHEN 'array' THEN coalesce((
            SELECT jsonb_agg(CASE WHEN jsonb_typeof(item) IN ('object', 'array') THEN privacy.redact(item)
                                  ELSE 'null'::jsonb END ORDER BY ordinality)
            FROM jsonb_array_elements(value) WITH ORDINALITY AS e(item, ordinality)), '[]'::jsonb)
        ELSE value
    END;
END
$$;

-- The person and every record merged into them.
CREATE FUNCTION privacy.person_and_merged(p_person uuid) RETURNS SETOF uuid
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT person_id FROM core.person WHERE person_id = p_person OR merged_into = p_person
$$;

-- The raw payloads that belong to a person: by the source ids mapped to them, by the source ids of the core
-- rows that point to them, by webhook events of those rows, and by their email anywhere in a payload.
CREATE FUNCTION privacy.raw_records_of(p_person uuid) RETURNS SETOF bigint
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH targets AS (
        SELECT privacy.person_and_merged(p_person) AS person_id
    ), keys AS (
        SELECT split_part(m.source, '.', 1) AS source, m.source_record_id
        FROM core.person_source_id m WHERE m.person_id IN (SELECT person_id FROM targets)
        UNION SELECT source, source_record_id FROM core.enrollment WHERE person_id IN (SELECT person_id FROM targets)
        UNION SELECT source, source_record_id FROM core.course_completion WHERE person_id IN (SELECT person_id FROM targets)
        UNION SELECT source, source_record_id FROM core.certificate WHERE person_id IN (SELECT person_id FROM targets)
        UNION SELECT source, source_record_id FROM core.donation WHERE person_id IN (SELECT person_id FROM targets)
        UNION SELECT source, source_record_id FROM core.consent WHERE person_id IN (SELECT person_id FROM targets)
        UNION SELECT source, source_record_id FROM core.survey_response WHERE person_id IN (SELECT person_id FROM targets)
        UNION SELECT source, source_record_id FROM core.referral
              WHERE referrer_person_id IN (SELECT person_id FROM targets)
                 OR referred_person_id IN (SELECT person_id FROM targets)
    ), emails AS (
        SELECT DISTINCT lower(email) AS email FROM core.person
        WHERE person_id IN (SELECT person_id FROM targets) AND email IS NOT NULL AND length(email) >= 5
    )
    SELECT r.raw_id FROM raw.records r JOIN keys k ON k.source = r.source AND k.source_record_id = r.source_record_id
    UNION
    SELECT r.raw_id FROM raw.records r
    JOIN ops.webhook_event w ON w.source = r.source AND r.stream = 'webhook' AND w.event_id = r.source_record_id
    JOIN keys k ON k.source = w.source AND k.source_record_id = w.record_id
    UNION
    SELECT r.raw_id FROM raw.records r JOIN emails e ON position(e.email IN lower(r.payload::text)) > 0
$$;

-- Everything held about a person, as one JSON document. Admin only; audited.
CREATE FUNCTION privacy.export_person(p_person uuid) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    document jsonb;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM core.person WHERE person_id = p_person) THEN
        RAISE EXCEPTION 'no person %', p_person USING ERRCODE = 'no_data_found';
    END IF;
    CREATE TEMP TABLE export_targets ON COMMIT DROP AS SELECT privacy.person_and_merged(p_person) AS person_id;
    SELECT jsonb_build_object(
        'person_id', p_person,
        'exported_at', now(),
        'people', (SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.created_at), '[]') FROM core.person p
                   WHERE p.person_id IN (SELECT person_id FROM export_targets)),
        'source_ids', (SELECT coalesce(jsonb_agg(to_jsonb(m)), '[]') FROM core.person_source_id m
                       WHERE m.person_id IN (SELECT person_id FROM export_targets)),
        'households', (SELECT coalesce(jsonb_agg(to_jsonb(h)), '[]') FROM core.household h
                       WHERE h.household_id IN (SELECT household_id FROM core.person
                                                WHERE person_id IN (SELECT person_id FROM export_targets))),
        'organization_memberships', (SELECT coalesce(jsonb_agg(to_jsonb(m)), '[]') FROM core.organization_membership m
                                     WHERE m.person_id IN (SELECT person_id FROM export_targets)),
        'enrollments', (SELECT coalesce(jsonb_agg(to_jsonb(e)), '[]') FROM core.enrollment e
                        WHERE e.person_id IN (SELECT person_id FROM export_targets)),
        'course_completions', (SELECT coalesce(jsonb_agg(to_jsonb(c)), '[]') FROM core.course_completion c
                               WHERE c.person_id IN (SELECT person_id FROM export_targets)),
        'certificates', (SELECT coalesce(jsonb_agg(to_jsonb(c)), '[]') FROM core.certificate c
                         WHERE c.person_id IN (SELECT person_id FROM export_targets)),
        'donations', (SELECT coalesce(jsonb_agg(to_jsonb(d) ORDER BY d.received_at), '[]') FROM core.donation d
                      WHERE d.person_id IN (SELECT person_id FROM export_targets)),
        'donation_soft_credits', (SELECT coalesce(jsonb_agg(to_jsonb(s)), '[]') FROM core.donation_soft_credit s
                                  WHERE s.person_id IN (SELECT person_id FROM export_targets)),
        'consent', (SELECT coalesce(jsonb_agg(to_jsonb(c) ORDER BY c.stated_at), '[]') FROM core.consent c
                    WHERE c.person_id IN (SELECT person_id FROM export_targets)),
        'outreach_decisions', (SELECT coalesce(jsonb_agg(to_jsonb(d)), '[]') FROM mart.outreach_decision d
                               WHERE d.person_id = p_person),
        'survey_responses', (SELECT coalesce(jsonb_agg(to_jsonb(s)), '[]') FROM core.survey_response s
                             WHERE s.person_id IN (SELECT person_id FROM export_targets)),
        'referrals', (SELECT coalesce(jsonb_agg(to_jsonb(r)), '[]') FROM core.referral r
                      WHERE r.referrer_person_id IN (SELECT person_id FROM export_targets)
                         OR r.referred_person_id IN (SELECT person_id FROM export_targets)),
        'rewards', (SELECT coalesce(jsonb_agg(to_jsonb(r)), '[]') FROM core.reward r
                    WHERE r.person_id IN (SELECT person_id FROM export_targets)),
        'raw_records', (SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.raw_id), '[]') FROM raw.records r
                        WHERE r.raw_id IN (SELECT privacy.raw_records_of(p_person))),
        'audit_references', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                 'seq', a.seq, 'occurred_at', a.occurred_at, 'action', a.action,
                                 'entity_type', a.entity_type, 'entity_id', a.entity_id, 'actor', a.actor)
                                 ORDER BY a.seq), '[]')
                             FROM audit.audit_events a
                             WHERE EXISTS (SELECT 1 FROM export_targets t
                                           WHERE a.entity_id = t.person_id::text
                                              OR position(t.person_id::text IN coalesce(a.before::text, '')
                                                          || coalesce(a.after::text, '')) > 0))
    ) INTO document;
    DROP TABLE export_targets;
    PERFORM audit.record_event('privacy_export', 'core.person', p_person::text,
        jsonb_build_object('raw_records', jsonb_array_length(document -> 'raw_records'),
                           'people', jsonb_array_length(document -> 'people')));
    RETURN document;
END
$$;
REVOKE ALL ON FUNCTION privacy.export_person(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.export_person(uuid) TO cdp_admin;

-- Erasure. Removes or pseudonymises the person's personal data in core, raw, ops; keeps what financial
-- audit needs (donation amounts, currencies, dates, transaction ids, the pseudonymous person id they point
-- to). Consent history keeps its statements (who, when, which receipt: proof of lawful processing) minus
-- the parent's name and evidence, and gains a withdrawal per purpose. SECURITY DEFINER because it alone
-- may redact raw; admin only; one audit event with the counts.
-- Superseded by 0012: today's definition is in sql/definitions/privacy/erase_person.sql.
CREATE FUNCTION privacy.erase_person(p_person uuid, p_reason text) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    erasure_id text := 'erasure:' || gen_random_uuid();
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

    PERFORM set_config('cdp.raw_redaction', 'on', true);
    UPDATE raw.records r
    SET payload = privacy.redact(r.payload)
                  || jsonb_build_object('_erased', jsonb_build_object('erasure_id', erasure_id, 'at', now()))
    WHERE r.raw_id IN (SELECT raw_id FROM erase_raw) AND NOT r.payload ? '_erased';
    GET DIAGNOSTICS n = ROW_COUNT;
    counts := counts || jsonb_build_object('raw_records_redacted', n);
    PERFORM set_config('cdp.raw_redaction', 'off', true);

    UPDATE ops.quarantine q SET payload = privacy.redact(q.payload) || jsonb_build_object('_erased', erasure_id)
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
    SELECT p_person, purpose, 'withdrawn', 'erasure request', 'privacy.erase', erasure_id || ':' || purpose, now(),
           jsonb_build_object('erasure_id', erasure_id)
    FROM (VALUES ('course_messages'), ('fundraising'), ('surveys'), ('partner_sharing')) AS pu(purpose);

    -- Source ids that are themselves personal (a billing email used as key) become a one-way hash.
    UPDATE core.person_source_id m SET source_record_id = 'erased:' || encode(sha256(convert_to(m.source_record_id, 'UTF8')), 'hex')
    WHERE m.person_id IN (SELECT person_id FROM erase_targets) AND m.source_record_id LIKE '%@%';

    UPDATE core.household h SET name = NULL, street = NULL, locality = NULL, postcode = NULL, updated_at = now()
    WHERE h.household_id IN (SELECT household_id FROM core.person WHERE person_id IN (SELECT person_id FROM erase_targets))
      AND NOT EXISTS (SELECT 1 FROM core.person o WHERE o.household_id = h.household_id
                      AND o.person_id NOT IN (SELECT person_id FROM erase_targets) AND o.erased_at IS NULL);

    UPDATE core.person p
    SET given_name = NULL, family_name = NULL, date_of_birth = NULL, email = NULL, email_normalized = NULL,
        phone = NULL, phone_e164 = NULL, erased_at = coalesce(p.erased_at, now()), updated_at = now()
    WHERE p.person_id IN (SELECT person_id FROM erase_targets);
    GET DIAGNOSTICS n = ROW_COUNT;
    counts := counts || jsonb_build_object('people', n);

    SELECT count(*) INTO n FROM core.donation WHERE person_id IN (SELECT person_id FROM erase_targets);
    counts := counts || jsonb_build_object('donations_kept', n, 'erasure_id', erasure_id);

    PERFORM audit.record_event('privacy_erase', 'core.person', p_person::text,
                               counts || jsonb_build_object('reason', p_reason));
    DROP TABLE erase_targets, erase_raw, erase_emails;
    RETURN counts;
END
$$;
REVOKE ALL ON FUNCTION privacy.erase_person(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.erase_person(uuid, text) TO cdp_admin;

-- ---------------------------------------------------------------------------------------------------------
-- Logins. Every person or service logs in as its own user, a member of exactly one application role; a
-- partner login is also bound to its organisation. SECURITY DEFINER (creating roles needs CREATEROLE,
-- which no application role has); admin only; the new login can never be superuser or bypass RLS.
-- ---------------------------------------------------------------------------------------------------------
CREATE FUNCTION privacy.create_login(p_login text, p_role text, p_password text, p_organization uuid DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_role NOT IN ('cdp_loader', 'cdp_viewer', 'cdp_editor', 'cdp_admin', 'cdp_finance', 'cdp_partner', 'cdp_outreach') THEN
        RAISE EXCEPTION 'unknown application role %', p_role USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (p_role = 'cdp_partner') <> (p_organization IS NOT NULL) THEN
        RAISE EXCEPTION 'a partner login needs an organisation, and only a partner login takes one'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_login !~ '^[a-z][a-z0-9_]{2,62}$' OR p_login LIKE 'cdp\_%' OR p_login LIKE 'pg\_%' THEN
        RAISE EXCEPTION 'login name % is not allowed', p_login USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(length(p_password), 0) < 12 THEN
        RAISE EXCEPTION 'the password must have at least 12 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE INHERIT IN ROLE %I',
                   p_login, p_password, p_role);
    IF p_organization IS NOT NULL THEN
        INSERT INTO core.partner_login (login_role, organization_id) VALUES (p_login, p_organization);
    END IF;
    PERFORM audit.record_event('create_login', 'role', p_login,
                               jsonb_build_object('role', p_role, 'organization_id', p_organization));
END
$$;
REVOKE ALL ON FUNCTION privacy.create_login(text, text, text, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.create_login(text, text, text, uuid) TO cdp_admin;

REVOKE ALL ON FUNCTION privacy.redact(jsonb), privacy.person_and_merged(uuid), privacy.raw_records_of(uuid),
    privacy.keep_erased_person_blank() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.redact(jsonb), privacy.person_and_merged(uuid), privacy.raw_records_of(uuid)
    TO cdp_admin;
