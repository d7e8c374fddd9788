-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0005_access_consent.sql.

-- The person and every record merged into them.
CREATE OR REPLACE FUNCTION privacy.person_and_merged(p_person uuid) RETURNS SETOF uuid
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT person_id FROM core.person WHERE person_id = p_person OR merged_into = p_person
$$;
REVOKE ALL ON FUNCTION privacy.person_and_merged(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.person_and_merged(uuid) TO cdp_admin;

-- The raw payloads that belong to a person: by the source ids mapped to them, by the source ids of the core
-- rows that point to them, by webhook events of those rows, and by their email anywhere in a payload.
CREATE OR REPLACE FUNCTION privacy.raw_records_of(p_person uuid) RETURNS SETOF bigint
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
REVOKE ALL ON FUNCTION privacy.raw_records_of(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.raw_records_of(uuid) TO cdp_admin;
