-- Moodle users deleted at the source (user.deleted = 1, stamped by delete_user() with timemodified) become
-- audited soft deletes (revision 0023), never silent leftovers:
--   * a user already in core: its identity core.person_source_id ('moodle.user', id) gets deleted_at; the
--     person, their history and their other sources' identities stay (the audit triggers record the UPDATE);
--   * a user deleted before it ever reached core: core.source_deletion keeps the deletion, so the count diff
--     counts it as landed (as a deletion) rather than dropped.
-- Moodle never undeletes a user (a re-created account is a new row and id), so deleted_at is set once.
CREATE TEMP TABLE deleted_users ON COMMIT DROP AS
SELECT DISTINCT ON (b.source_record_id)
       b.source_record_id,
       to_timestamp((b.payload ->> 'timemodified')::bigint) AS deleted_at
FROM sync_batch b
WHERE b.reason IS NULL AND b.payload ->> 'deleted' IN ('1', 'true')
ORDER BY b.source_record_id, b.seq DESC;

UPDATE core.person_source_id m
SET deleted_at = d.deleted_at, last_seen_at = now()
FROM deleted_users d
WHERE m.source = 'moodle.user' AND m.source_record_id = d.source_record_id AND m.deleted_at IS NULL;

INSERT INTO core.source_deletion (source, source_record_id, deleted_at)
SELECT 'moodle.user', d.source_record_id, d.deleted_at
FROM deleted_users d
WHERE NOT EXISTS (SELECT 1 FROM core.person_source_id m
                  WHERE m.source = 'moodle.user' AND m.source_record_id = d.source_record_id)
ON CONFLICT (source, source_record_id) DO NOTHING;
