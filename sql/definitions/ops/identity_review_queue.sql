-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0003_identity_merges.sql.

-- The review queue for program staff: both records side by side, strongest evidence first. A side that was
-- merged since the pair was scored shows as its survivor; pairs whose sides are now one person drop out.
CREATE OR REPLACE VIEW ops.identity_review_queue AS
SELECT q.pair_id, q.score, q.class, q.guard, q.levels, q.first_run_id, q.last_run_id, q.created_at,
       l.person_id AS left_person_id, l.given_name AS left_given_name, l.family_name AS left_family_name,
       l.date_of_birth AS left_date_of_birth, l.email AS left_email, l.phone AS left_phone,
       l.country AS left_country, l.is_learner AS left_is_learner, l.is_donor AS left_is_donor,
       (SELECT string_agg(s.source, ', ' ORDER BY s.source) FROM core.person_source_id s
         WHERE s.person_id = l.person_id) AS left_sources,
       r.person_id AS right_person_id, r.given_name AS right_given_name, r.family_name AS right_family_name,
       r.date_of_birth AS right_date_of_birth, r.email AS right_email, r.phone AS right_phone,
       r.country AS right_country, r.is_learner AS right_is_learner, r.is_donor AS right_is_donor,
       (SELECT string_agg(s.source, ', ' ORDER BY s.source) FROM core.person_source_id s
         WHERE s.person_id = r.person_id) AS right_sources
FROM ops.identity_pair q
JOIN core.person l ON l.person_id = ops.person_root(q.person_low)
JOIN core.person r ON r.person_id = ops.person_root(q.person_high)
WHERE q.status = 'queued' AND l.person_id <> r.person_id;
COMMENT ON VIEW ops.identity_review_queue IS
    'Possible duplicates awaiting a decision (cdp dedupe review), both records side by side.';
REVOKE ALL ON ops.identity_review_queue FROM PUBLIC;
GRANT SELECT ON ops.identity_review_queue TO cdp_loader, cdp_viewer, cdp_editor, cdp_admin;
