-- 0006 Migration phases 1 and 4.
-- Phase 1 (migration_phase1_audit): legacy exports (LMS, CRM, donor and referral spreadsheets) landed as
-- received, profiled before and after an automatic cleanup, and what cannot be fixed safely queued for
-- people. Phase 4 (migration_phase4_platforms): the volunteer platform (Galaxy Digital) in core, joined to
-- the same person ids, and the KPI marts with history by month.
--
-- History: the views and functions below are as this revision made them. Today's definition of each is
-- in sql/definitions/, which `cdp migrate` re-applies after the revisions (sql/README.md).

-- ---------------------------------------------------------------------------------------------------------
-- Phase 1: legacy exports.
-- ---------------------------------------------------------------------------------------------------------
-- One row per distinct file content received for an export: the same file again lands nothing. Its rows
-- go to raw.records (source 'legacy', stream = the export, source_record_id = '<sha256 prefix>:<row>'),
-- every row as received, a row that cannot be parsed with its reason.
CREATE TABLE raw.legacy_file (
    file_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    export      text NOT NULL,        -- lms_learners, lms_enrollments, crm_contacts, donors, referrals
    file_name   text NOT NULL,
    format      text NOT NULL CHECK (format IN ('csv', 'xlsx')),
    sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    rows        integer NOT NULL CHECK (rows >= 0),
    run_id      text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (export, sha256)
);
COMMENT ON TABLE raw.legacy_file IS 'Legacy export files received (one row per distinct content); rows in raw.records.';
-- Its own guard: raw.refuse_change() knows raw.records' columns (the erasure's redaction path, 0005).
CREATE FUNCTION raw.refuse_legacy_file_change() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'raw.legacy_file is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER refuse_update_delete BEFORE UPDATE OR DELETE ON raw.legacy_file
    FOR EACH ROW EXECUTE FUNCTION raw.refuse_legacy_file_change();
CREATE TRIGGER refuse_truncate BEFORE TRUNCATE ON raw.legacy_file
    FOR EACH STATEMENT EXECUTE FUNCTION raw.refuse_legacy_file_change();

-- A profile of one set of files (fingerprint = sha256 of their sorted contents' hashes), before or after
-- the cleanup. Profiling the same files again finds the row already there and changes nothing.
CREATE TABLE ops.legacy_profile (
    fingerprint        text NOT NULL,
    stage              text NOT NULL CHECK (stage IN ('before', 'after')),
    run_id             text NOT NULL,
    profiled_at        timestamptz NOT NULL DEFAULT now(),
    records            integer NOT NULL CHECK (records >= 0),
    records_with_errors integer NOT NULL CHECK (records_with_errors BETWEEN 0 AND records),
    accuracy_rate      numeric CHECK (accuracy_rate BETWEEN 0 AND 1),
    summary            jsonb NOT NULL,
    PRIMARY KEY (fingerprint, stage)
);
COMMENT ON TABLE ops.legacy_profile IS 'Legacy data audit: accuracy rate (share of records without errors) and the full summary.';

-- The profile's numbers one per row, for SQL: kind is completeness (count = filled values of a field),
-- invalid (count = values breaking a rule), duplicates, orphans, conflicts, errors.
CREATE TABLE ops.legacy_profile_metric (
    fingerprint text NOT NULL,
    stage       text NOT NULL,
    export      text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('completeness', 'invalid', 'duplicates', 'orphans', 'conflicts', 'errors')),
    subject     text NOT NULL,        -- the field or rule
    count       integer NOT NULL CHECK (count >= 0),
    total       integer NOT NULL CHECK (total >= 0),
    PRIMARY KEY (fingerprint, stage, export, kind, subject),
    FOREIGN KEY (fingerprint, stage) REFERENCES ops.legacy_profile
);

-- The cleaned version of each legacy row: its values after the safe fixes, which fixes were applied, and
-- whether it is clean, fixed, an exact duplicate of another row (kept out of the migration) or waiting
-- for review. raw keeps the row as received.
CREATE TABLE ops.legacy_clean_record (
    export      text NOT NULL,
    row_key     text NOT NULL,        -- = raw.records.source_record_id
    file_sha256 text NOT NULL,
    row_number  integer NOT NULL,
    values      jsonb,
    fixes       text[] NOT NULL DEFAULT '{}',
    status      text NOT NULL CHECK (status IN ('clean', 'fixed', 'duplicate', 'review')),
    duplicate_of text,
    run_id      text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (export, row_key)
);

-- What the cleanup could not fix safely, with the reason; people decide.
CREATE TABLE ops.legacy_review (
    review_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    export      text NOT NULL,
    row_key     text NOT NULL,
    rule        text NOT NULL,
    reason      text NOT NULL,
    payload     jsonb NOT NULL,
    run_id      text NOT NULL,
    queued_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    resolution  text,
    UNIQUE (export, row_key, rule)
);
CREATE INDEX legacy_review_open ON ops.legacy_review (export) WHERE resolved_at IS NULL;

GRANT SELECT, INSERT ON raw.legacy_file TO cdp_loader;
GRANT SELECT ON raw.legacy_file TO cdp_admin;
GRANT SELECT ON ops.legacy_profile, ops.legacy_profile_metric, ops.legacy_clean_record, ops.legacy_review
    TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
GRANT SELECT, INSERT, UPDATE, DELETE ON ops.legacy_profile, ops.legacy_profile_metric, ops.legacy_clean_record,
    ops.legacy_review TO cdp_loader;
-- The cleaned rows carry contact details as the legacy systems held them: staff see the queue, not them.
REVOKE SELECT ON ops.legacy_clean_record FROM cdp_viewer, cdp_editor, cdp_finance;
REVOKE SELECT ON ops.legacy_review FROM cdp_viewer, cdp_editor, cdp_finance;
GRANT SELECT (review_id, export, row_key, rule, reason, run_id, queued_at, resolved_at, resolution)
    ON ops.legacy_review TO cdp_viewer, cdp_editor, cdp_finance;

-- ---------------------------------------------------------------------------------------------------------
-- Phase 4: the volunteer platform (Galaxy Digital: users, shift responses, hours).
-- ---------------------------------------------------------------------------------------------------------
CREATE TABLE core.volunteer (
    volunteer_id     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    person_id        uuid NOT NULL REFERENCES core.person,
    status           text NOT NULL CHECK (status IN ('active', 'inactive', 'pending')),
    registered_at    timestamptz NOT NULL,
    source           text NOT NULL,
    source_record_id text NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_record_id)
);
CREATE INDEX volunteer_person ON core.volunteer (person_id);

-- A volunteer's sign-up to one shift of a need (Galaxy's "response").
CREATE TABLE core.volunteer_shift (
    volunteer_shift_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    volunteer_id     uuid NOT NULL REFERENCES core.volunteer,
    person_id        uuid NOT NULL REFERENCES core.person,
    need_id          text NOT NULL,
    need_title       text,
    shift_id         text NOT NULL,
    starts_at        timestamptz NOT NULL,
    ends_at          timestamptz NOT NULL,
    status           text NOT NULL CHECK (status IN ('active', 'inactive')),
    source           text NOT NULL,
    source_record_id text NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_record_id),
    CHECK (ends_at > starts_at)
);
CREATE INDEX volunteer_shift_person ON core.volunteer_shift (person_id);

-- Hours a volunteer logged, in whole minutes (Galaxy reports decimal hours; 2.25 h = 135 min).
CREATE TABLE core.volunteer_hours (
    volunteer_hours_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    volunteer_id     uuid NOT NULL REFERENCES core.volunteer,
    person_id        uuid NOT NULL REFERENCES core.person,
    need_id          text,
    served_on        date NOT NULL,
    minutes          integer NOT NULL CHECK (minutes > 0),
    status           text NOT NULL CHECK (status IN ('approved', 'pending', 'declined')),
    source           text NOT NULL,
    source_record_id text NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_record_id)
);
CREATE INDEX volunteer_hours_person ON core.volunteer_hours (person_id);

SELECT audit.track_changes(t.regclass, t.key_column)
FROM (VALUES ('core.volunteer'::regclass, 'volunteer_id'), ('core.volunteer_shift', 'volunteer_shift_id'),
             ('core.volunteer_hours', 'volunteer_hours_id')) AS t(regclass, key_column);

GRANT SELECT ON core.volunteer, core.volunteer_shift, core.volunteer_hours
    TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
GRANT SELECT, INSERT, UPDATE, DELETE ON core.volunteer, core.volunteer_shift, core.volunteer_hours
    TO cdp_loader, cdp_admin;

-- ---------------------------------------------------------------------------------------------------------
-- KPI marts (month, numerator, denominator, value; value NULL when the denominator is 0). Months are UTC
-- calendar months, from the first month with data to the last.
-- ---------------------------------------------------------------------------------------------------------
CREATE VIEW mart.kpi_course_completion_monthly AS
WITH cohort AS (
    SELECT date_trunc('month', e.enrolled_at AT TIME ZONE 'UTC')::date AS month,
           EXISTS (SELECT 1 FROM core.course_completion k
                   WHERE k.person_id = e.person_id AND k.course_id = e.course_id
                     AND k.completed_at >= e.enrolled_at) AS completed
    FROM core.enrollment e
), months AS (
    SELECT generate_series(min(month), max(month), interval '1 month')::date AS month FROM cohort
)
SELECT m.month,
       count(c.month) FILTER (WHERE c.completed)::numeric AS numerator,
       count(c.month)::numeric AS denominator,
       CASE WHEN count(c.month) > 0
            THEN count(c.month) FILTER (WHERE c.completed)::numeric / count(c.month) END AS value
FROM months m
LEFT JOIN cohort c ON c.month = m.month
GROUP BY m.month;
COMMENT ON VIEW mart.kpi_course_completion_monthly IS
    'Course completion rate (share, 0-1): of the enrollments started in the month, those whose learner has a completion of that course dated on or after the enrollment started.';

CREATE VIEW mart.kpi_learner_reengagement_monthly AS
WITH active AS (
    SELECT DISTINCT e.person_id, date_trunc('month', e.enrolled_at AT TIME ZONE 'UTC')::date AS month
    FROM core.enrollment e
), flagged AS (
    SELECT a.month,
           (SELECT max(e.enrolled_at AT TIME ZONE 'UTC') FROM core.enrollment e
            WHERE e.person_id = a.person_id AND e.enrolled_at AT TIME ZONE 'UTC' < a.month) AS previous
    FROM active a
), months AS (
    SELECT generate_series(min(month), max(month), interval '1 month')::date AS month FROM active
)
SELECT m.month,
       count(f.month) FILTER (WHERE f.previous < m.month - interval '90 days')::numeric AS numerator,
       count(f.month)::numeric AS denominator,
       CASE WHEN count(f.month) > 0
            THEN count(f.month) FILTER (WHERE f.previous < m.month - interval '90 days')::numeric / count(f.month)
       END AS value
FROM months m
LEFT JOIN flagged f ON f.month = m.month
GROUP BY m.month;
COMMENT ON VIEW mart.kpi_learner_reengagement_monthly IS
    'Learner re-engagement (share, 0-1): of the learners who started an enrollment in the month, those who had enrolled before but not in the 90 days before the month began (their previous enrollment started more than 90 days before the 1st).';

-- Cumulative: a learner is anyone with an enrollment started before the month ended; a donor anyone with a
-- gift made (succeeded, refunded or partly refunded) before then; a volunteer anyone registered with the
-- volunteer platform before then. People follow merges to their survivor.
CREATE VIEW mart.kpi_learners_also_donors_monthly AS
WITH learner AS (
    SELECT coalesce(p.merged_into, p.person_id) AS person_id, min(e.enrolled_at) AS since
    FROM core.enrollment e JOIN core.person p ON p.person_id = e.person_id
    GROUP BY 1
), donor AS (
    SELECT coalesce(p.merged_into, p.person_id) AS person_id, min(d.received_at) AS since
    FROM core.donation d JOIN core.person p ON p.person_id = d.person_id
    WHERE d.status IN ('succeeded', 'refunded', 'partially_refunded')
    GROUP BY 1
), months AS (
    SELECT generate_series(date_trunc('month', min(since) AT TIME ZONE 'UTC'),
                           date_trunc('month', now() AT TIME ZONE 'UTC'), interval '1 month')::date AS month
    FROM learner
)
SELECT m.month,
       count(l.person_id) FILTER (WHERE d.since < (m.month + interval '1 month') AT TIME ZONE 'UTC')::numeric AS numerator,
       count(l.person_id)::numeric AS denominator,
       CASE WHEN count(l.person_id) > 0
            THEN count(l.person_id) FILTER (WHERE d.since < (m.month + interval '1 month') AT TIME ZONE 'UTC')::numeric
                 / count(l.person_id) END AS value
FROM months m
LEFT JOIN learner l ON l.since < (m.month + interval '1 month') AT TIME ZONE 'UTC'
LEFT JOIN donor d ON d.person_id = l.person_id
GROUP BY m.month;
COMMENT ON VIEW mart.kpi_learners_also_donors_monthly IS
    'Learners who are also donors (share, 0-1, cumulative): of everyone who had started an enrollment by the end of the month, those who had made a gift (succeeded, refunded or partly refunded) by then.';

CREATE VIEW mart.kpi_learners_also_volunteers_monthly AS
WITH learner AS (
    SELECT coalesce(p.merged_into, p.person_id) AS person_id, min(e.enrolled_at) AS since
    FROM core.enrollment e JOIN core.person p ON p.person_id = e.person_id
    GROUP BY 1
), volunteer AS (
    SELECT coalesce(p.merged_into, p.person_id) AS person_id, min(v.registered_at) AS since
    FROM core.volunteer v JOIN core.person p ON p.person_id = v.person_id
    GROUP BY 1
), months AS (
    SELECT generate_series(date_trunc('month', min(since) AT TIME ZONE 'UTC'),
                           date_trunc('month', now() AT TIME ZONE 'UTC'), interval '1 month')::date AS month
    FROM learner
)
SELECT m.month,
       count(l.person_id) FILTER (WHERE v.since < (m.month + interval '1 month') AT TIME ZONE 'UTC')::numeric AS numerator,
       count(l.person_id)::numeric AS denominator,
       CASE WHEN count(l.person_id) > 0
            THEN count(l.person_id) FILTER (WHERE v.since < (m.month + interval '1 month') AT TIME ZONE 'UTC')::numeric
                 / count(l.person_id) END AS value
FROM months m
LEFT JOIN learner l ON l.since < (m.month + interval '1 month') AT TIME ZONE 'UTC'
LEFT JOIN volunteer v ON v.person_id = l.person_id
GROUP BY m.month;
COMMENT ON VIEW mart.kpi_learners_also_volunteers_monthly IS
    'Learners who are also volunteers (share, 0-1, cumulative): of everyone who had started an enrollment by the end of the month, those registered with the volunteer platform by then.';

CREATE VIEW mart.kpi_data_accuracy_monthly AS
WITH latest AS (
    SELECT DISTINCT ON (date_trunc('month', profiled_at AT TIME ZONE 'UTC'))
           date_trunc('month', profiled_at AT TIME ZONE 'UTC')::date AS month, records, records_with_errors
    FROM ops.legacy_profile
    WHERE stage = 'after'
    ORDER BY date_trunc('month', profiled_at AT TIME ZONE 'UTC'), profiled_at DESC
), months AS (
    SELECT generate_series(min(month), max(month), interval '1 month')::date AS month FROM latest
)
SELECT m.month,
       coalesce(l.records - l.records_with_errors, 0)::numeric AS numerator,
       coalesce(l.records, 0)::numeric AS denominator,
       CASE WHEN l.records > 0 THEN (l.records - l.records_with_errors)::numeric / l.records END AS value
FROM months m
LEFT JOIN latest l ON l.month = m.month;
COMMENT ON VIEW mart.kpi_data_accuracy_monthly IS
    'Data accuracy rate (share, 0-1): of the legacy records in the month''s latest audit, after the automatic cleanup, those without any error (migration_phase1_audit; target above 0.98).';

CREATE VIEW mart.kpi_duplicate_rate_monthly AS
WITH runs AS (
    SELECT date_trunc('month', coalesce(finished_at, started_at) AT TIME ZONE 'UTC')::date AS month,
           coalesce((details ->> 'people_in_pairs')::bigint, 0) AS in_pairs, people_compared
    FROM ops.dedupe_run
    WHERE status = 'succeeded'
), months AS (
    SELECT generate_series(min(month), max(month), interval '1 month')::date AS month FROM runs
)
SELECT m.month,
       coalesce(sum(r.in_pairs), 0)::numeric AS numerator,
       coalesce(sum(r.people_compared), 0)::numeric AS denominator,
       CASE WHEN sum(r.people_compared) > 0 THEN sum(r.in_pairs)::numeric / sum(r.people_compared) END AS value
FROM months m
LEFT JOIN runs r ON r.month = m.month
GROUP BY m.month;
COMMENT ON VIEW mart.kpi_duplicate_rate_monthly IS
    'Duplicate rate (share, 0-1): over the month''s succeeded dedupe runs, people found in a match or possible match divided by people compared (ops.dedupe_run).';

GRANT SELECT ON mart.kpi_course_completion_monthly, mart.kpi_learner_reengagement_monthly,
    mart.kpi_learners_also_donors_monthly, mart.kpi_learners_also_volunteers_monthly,
    mart.kpi_data_accuracy_monthly, mart.kpi_duplicate_rate_monthly
    TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
