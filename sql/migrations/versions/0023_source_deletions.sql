-- 0023 source deletions (issue 17, items 2 and 6: "Deleted Moodle users become audited soft deletes in core,
-- not silent leftovers"; "counts and the count diff treat them explicitly").
--
-- A person's identity in a source (core.person_source_id) is soft-deleted: deleted_at is the time the source
-- deleted it (Moodle: the user row's timemodified when delete_user() set deleted = 1). The row stays, so the
-- person, their history and every other source's identity stay; the UPDATE is recorded by the table's
-- existing audit triggers (audit.record_change, a definer function since 0017), like every change to core.
--
-- A record deleted at the source before it ever reached core (created and deleted between two syncs) has no
-- core row to stamp: core.source_deletion keeps it, audited the same way, so the count diff counts it as
-- having reached the warehouse (as a deletion) instead of as "dropped" (sql/definitions/ops/count_window.sql).
-- Its source_record_id is the source's opaque record id (Moodle's user id), never an email: sources keyed by
-- email must not write here (no person_id to erase it by).

-- core.person_source_id.deleted_at itself came with 0022 (CRM contacts deleted or merged): one column for both.

CREATE TABLE core.source_deletion (
    source           text NOT NULL,         -- the person key space or source (e.g. 'moodle.user')
    source_record_id text NOT NULL,         -- the source's opaque record id
    deleted_at       timestamptz NOT NULL,  -- when the source deleted it
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, source_record_id)
);
COMMENT ON TABLE core.source_deletion IS
    'Records deleted at the source before they ever reached core, kept so that no deletion is silent.';
SELECT audit.track_changes('core.source_deletion'::regclass, 'source_record_id');

REVOKE ALL ON core.source_deletion FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON core.source_deletion TO cdp_loader;
GRANT SELECT ON core.source_deletion TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance, cdp_definer;
