-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0005_access_consent.sql; the volunteer sections added since.

-- Everything held about a person, as one JSON document. Admin only; audited.
CREATE OR REPLACE FUNCTION privacy.export_person(p_person uuid) RETURNS jsonb
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
        -- The volunteer platform (migration phase 4), added after 0005: volunteer records, shifts, hours.
        'volunteers', (SELECT coalesce(jsonb_agg(to_jsonb(v)), '[]') FROM core.volunteer v
                       WHERE v.person_id IN (SELECT person_id FROM export_targets)),
        'volunteer_shifts', (SELECT coalesce(jsonb_agg(to_jsonb(v)), '[]') FROM core.volunteer_shift v
                             WHERE v.person_id IN (SELECT person_id FROM export_targets)),
        'volunteer_hours', (SELECT coalesce(jsonb_agg(to_jsonb(v)), '[]') FROM core.volunteer_hours v
                            WHERE v.person_id IN (SELECT person_id FROM export_targets)),
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
