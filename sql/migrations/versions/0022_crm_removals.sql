-- 0022 CRM removals (issue 16: "a contact deleted or merged in the CRM stays in the warehouse forever").
--
-- The Contact stream reads with queryAll, so a Contact deleted in Salesforce (IsDeleted) or merged into
-- another (IsDeleted with MasterRecordId, the surviving record) arrives like any change. It is never
-- dropped silently and never deleted here: its source identity gets deleted_at (a soft delete: the person
-- and their other sources stay), this table keeps what the CRM said, and a merge whose two contacts are two
-- persons here becomes a pair in the identity review queue (ops.identity_pair, never merged automatically).
-- A Contact restored from the recycle bin clears deleted_at and closes its row (restored_at). Both tables
-- are audited by the warehouse's own triggers (audit.track_changes), so every change is an audit event.

ALTER TABLE core.person_source_id ADD COLUMN deleted_at timestamptz;
COMMENT ON COLUMN core.person_source_id.deleted_at IS
    'When the source deleted (or merged away) this identity; NULL while it exists there. The row is kept, the '
    'change is audited (0022; Moodle users deleted at the source use the same column, 0023).';

CREATE TABLE core.crm_record_removal (
    source           text NOT NULL,
    sobject          text NOT NULL,
    source_record_id text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('deleted', 'merged')),
    master_record_id text,                       -- the surviving record of a merge (MasterRecordId)
    person_id        uuid REFERENCES core.person,  -- the person the removed record was mapped to, if any
    master_person_id uuid REFERENCES core.person,  -- the person of the surviving record, if known here
    removed_at       timestamptz NOT NULL,       -- the record's SystemModstamp when it was deleted
    run_id           text NOT NULL,              -- the sync run that saw it
    restored_at      timestamptz,                -- undeleted at the source since (then it syncs again)
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, sobject, source_record_id),
    CHECK ((kind = 'merged') = (master_record_id IS NOT NULL))
);
COMMENT ON TABLE core.crm_record_removal IS
    'CRM records deleted or merged at the source, as the CRM reported them (queryAll); soft deletes only.';

SELECT audit.track_changes('core.crm_record_removal'::regclass, 'source_record_id');

REVOKE ALL ON core.crm_record_removal FROM PUBLIC;
GRANT SELECT ON core.crm_record_removal TO cdp_viewer, cdp_editor, cdp_admin;
GRANT SELECT, INSERT, UPDATE ON core.crm_record_removal TO cdp_loader;
GRANT SELECT (deleted_at) ON core.person_source_id TO cdp_viewer, cdp_editor, cdp_finance;
GRANT SELECT ON core.crm_record_removal TO cdp_definer;  -- as 0017 gave it every table: the erasures read all
