-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0003_identity_merges.sql; masked since issue 15.

-- The review queue for program staff: both records side by side, strongest evidence first. A side that was
-- merged since the pair was scored shows as its survivor; pairs whose sides are now one person drop out.
--
-- The view reads core.person with its owner's rights, so it shows each person column only to a reader who
-- may read that column in core.person itself (has_column_privilege is the reader's: a view does not change
-- current_user); for anyone else the column is NULL. What a reviewer needs of the hidden columns is whether
-- the two sides agree, given in same_email, same_phone and same_date_of_birth (NULL where a side has none).
-- Without the mask a viewer read both sides' emails, phones and birth dates here (issue 15, item 3).
CREATE OR REPLACE VIEW ops.identity_review_queue WITH (security_barrier = true) AS
SELECT q.pair_id, q.score, q.class, q.guard, q.levels, q.first_run_id, q.last_run_id, q.created_at,
       l.person_id AS left_person_id,
       CASE WHEN has_column_privilege('core.person', 'given_name', 'SELECT') THEN l.given_name END
           AS left_given_name,
       CASE WHEN has_column_privilege('core.person', 'family_name', 'SELECT') THEN l.family_name END
           AS left_family_name,
       CASE WHEN has_column_privilege('core.person', 'date_of_birth', 'SELECT') THEN l.date_of_birth END
           AS left_date_of_birth,
       CASE WHEN has_column_privilege('core.person', 'email', 'SELECT') THEN l.email END
           AS left_email,
       CASE WHEN has_column_privilege('core.person', 'phone', 'SELECT') THEN l.phone END
           AS left_phone,
       CASE WHEN has_column_privilege('core.person', 'country', 'SELECT') THEN l.country END
           AS left_country,
       CASE WHEN has_column_privilege('core.person', 'is_learner', 'SELECT') THEN l.is_learner END
           AS left_is_learner,
       CASE WHEN has_column_privilege('core.person', 'is_donor', 'SELECT') THEN l.is_donor END
           AS left_is_donor,
       (SELECT string_agg(s.source, ', ' ORDER BY s.source) FROM core.person_source_id s
         WHERE s.person_id = l.person_id) AS left_sources,
       r.person_id AS right_person_id,
       CASE WHEN has_column_privilege('core.person', 'given_name', 'SELECT') THEN r.given_name END
           AS right_given_name,
       CASE WHEN has_column_privilege('core.person', 'family_name', 'SELECT') THEN r.family_name END
           AS right_family_name,
       CASE WHEN has_column_privilege('core.person', 'date_of_birth', 'SELECT') THEN r.date_of_birth END
           AS right_date_of_birth,
       CASE WHEN has_column_privilege('core.person', 'email', 'SELECT') THEN r.email END
           AS right_email,
       CASE WHEN has_column_privilege('core.person', 'phone', 'SELECT') THEN r.phone END
           AS right_phone,
       CASE WHEN has_column_privilege('core.person', 'country', 'SELECT') THEN r.country END
           AS right_country,
       CASE WHEN has_column_privilege('core.person', 'is_learner', 'SELECT') THEN r.is_learner END
           AS right_is_learner,
       CASE WHEN has_column_privilege('core.person', 'is_donor', 'SELECT') THEN r.is_donor END
           AS right_is_donor,
       (SELECT string_agg(s.source, ', ' ORDER BY s.source) FROM core.person_source_id s
         WHERE s.person_id = r.person_id) AS right_sources,
       l.email_normalized = r.email_normalized AS same_email,
       l.phone_e164 = r.phone_e164 AS same_phone,
       l.date_of_birth = r.date_of_birth AS same_date_of_birth
FROM ops.identity_pair q
JOIN core.person l ON l.person_id = ops.person_root(q.person_low)
JOIN core.person r ON r.person_id = ops.person_root(q.person_high)
WHERE q.status = 'queued' AND l.person_id <> r.person_id;
COMMENT ON VIEW ops.identity_review_queue IS
    'Possible duplicates awaiting a decision (cdp dedupe review), both records side by side; person columns '
    'the reader may not read in core.person are NULL, same_* say whether the sides agree.';
REVOKE ALL ON ops.identity_review_queue FROM PUBLIC;
GRANT SELECT ON ops.identity_review_queue TO cdp_loader, cdp_viewer, cdp_editor, cdp_admin;
