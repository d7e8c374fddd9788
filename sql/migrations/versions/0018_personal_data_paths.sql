-- 0018 personal data paths (issue 15, items 3 and 4): personal data stays with the roles that may read the
-- same columns in core, through every path, and partners stay in their lane.
--
-- Found as an attacker with each role's login: viewers and editors read what core's column grants deny them
-- through copies of it elsewhere. Each copy is now granted like its original:
--   * ops.quarantine.payload       a whole source record (a Moodle user with email and birth date)
--   * ops.webhook_rejection.body   what someone typed into a form (not written since 0016; old rows kept)
--   * ops.identity_merge images    both people as they were before a merge, every column of core.person
--   * core.person_source_id        a source's id for a person, an email for the sources keyed by email (0012
--                                  registered the column as personal), and ops.identity_merge_move.row_key
--                                  which names a moved source id by it
--   * audit.audit_events images    the before/after row images and the application events' details: a
--                                  consent statement is chained in clear (only its evidence and given_by
--                                  columns are split off to audit.personal_image), and core.consent is
--                                  refused to every staff role but admin and the loader
-- Staff keep what they need to work: the quarantine's reason class and counts, the chain's metadata, and
-- audit.readable_events (sql/definitions/audit/readable_events.sql), which shows each row image cut to the
-- columns the reader may read in core. The identity review queue (sql/definitions/ops/
-- identity_review_queue.sql) masks what the reader may not read in core.person and says instead whether the
-- two sides agree.
--
-- Partners read nothing of audit: they kept SELECT on audit.audit_events from 0001 and read other
-- organisations' enrollments and donations in its images. What a partner's own writes need of the table is
-- the chain trigger's look at the last row (seq, hash), which runs as the writer; the hashes say nothing.
-- (When the chain is written only by definer functions, that grant can go too.)
--
-- Partners adopted other organisations' members: a partner inserted a membership of its own organisation
-- for a person who is another partner's learner, and row-level security then showed that person's name
-- (the policy allows any person id in the partner's own organisation). Partners now register a member only
-- through privacy.register_member (sql/definitions/privacy/register_member.sql), which refuses a person who
-- belongs to another organisation, and may update only a membership's cohort and start date (changing its
-- person id was the same adoption by UPDATE).

-- Quarantine: the payload only for the roles that read raw payloads (admin, the loader that writes it).
REVOKE SELECT ON ops.quarantine FROM cdp_viewer, cdp_editor, cdp_finance;
GRANT SELECT (quarantine_id, source, stream, source_record_id, run_id, reason, quarantined_at, resolved_at,
              resolution)
    ON ops.quarantine TO cdp_viewer, cdp_editor, cdp_finance;

-- Rejected webhook bodies: admin only (the loader writes the rows).
REVOKE SELECT ON ops.webhook_rejection FROM cdp_viewer, cdp_editor, cdp_finance;
GRANT SELECT (rejection_id, received_at, source, status_code, reason, content_type, body_bytes, body_sha256)
    ON ops.webhook_rejection TO cdp_viewer, cdp_editor, cdp_finance;

-- Merge before-images (and the unmerge's record of what it restored): admin and the loader (dedupe) only.
REVOKE SELECT ON ops.identity_merge FROM cdp_viewer, cdp_editor;
GRANT SELECT (merge_id, run_id, pair_id, survivor_id, absorbed_id, reason, score, merged_at, merged_by,
              unmerged_at, unmerged_by)
    ON ops.identity_merge TO cdp_viewer, cdp_editor;

-- Source ids: some sources key people by email (0012 registered the column as personal), and a merge's
-- moves name the rows it moved by that key.
REVOKE SELECT ON core.person_source_id FROM cdp_viewer, cdp_editor, cdp_finance;
GRANT SELECT (source, person_id, first_seen_at, last_seen_at) ON core.person_source_id
    TO cdp_viewer, cdp_editor, cdp_finance;
REVOKE SELECT ON ops.identity_merge_move FROM cdp_viewer, cdp_editor;
GRANT SELECT (merge_id, table_name, column_name, old_person_id, new_person_id) ON ops.identity_merge_move
    TO cdp_viewer, cdp_editor;

-- The audit chain: staff read its metadata, the images through audit.readable_events.
REVOKE SELECT ON audit.audit_events FROM cdp_viewer, cdp_editor, cdp_finance, cdp_partner;
GRANT SELECT (seq, occurred_at, db_role, session_role, actor, action, entity_type, entity_id, dag_id, run_id,
              task_id, txid, prev_hash, hash)
    ON audit.audit_events TO cdp_viewer, cdp_editor, cdp_finance;
-- Partners read nothing of the trail: the audit triggers run as cdp_definer since revision 0017, so a
-- partner's own writes need no read of the chain either.

-- Memberships: a partner inserts through privacy.register_member and changes only cohort and start date.
REVOKE INSERT, UPDATE ON core.organization_membership FROM cdp_partner;
GRANT UPDATE (cohort, since) ON core.organization_membership TO cdp_partner;
GRANT INSERT ON core.organization_membership TO cdp_definer;  -- privacy.register_member

-- Partners read and write only core (under forced row-level security) and audit's two chain columns; the
-- other schemas hold nothing of theirs (no grant in them), so the usage goes too.
REVOKE USAGE ON SCHEMA raw, ops, mart FROM cdp_partner;
