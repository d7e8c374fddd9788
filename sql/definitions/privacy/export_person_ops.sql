-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0014_crm_linking.sql.

-- What the migration's ops tables hold about a person, for the data subject export.
CREATE OR REPLACE FUNCTION privacy.export_person_ops(p_person uuid) RETURNS jsonb
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
REVOKE ALL ON FUNCTION privacy.export_person_ops(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.export_person_ops(uuid) TO cdp_admin;
