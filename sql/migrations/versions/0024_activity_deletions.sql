-- 0024 activity records deleted at the source (issue 17, item 6).
--
-- A record the source deleted is kept in core and marked: deleted_at is when the sync first saw the deletion
-- (NULL while the source still has it; set back to NULL if the record comes back). The rows stay so that
-- what pointed to them (rewards, tickets, consent evidence) keeps its history, and every such change is an
-- UPDATE, which the tables' audit triggers (audit.track_changes, 0001) record like any other: no audit
-- event is written by hand. Each source says how it shows a deletion:
--   core.referral          ReferralHero lists no removals: a subscriber missing from a complete listing
--                          of the campaign (referralhero/sql/subscribers_removed.sql).
--   core.volunteer_hours   Galaxy Digital marks a deleted hour record inactive (listed with show_inactive).
--   core.support_ticket    Zendesk's incremental export keeps a deleted ticket with status "deleted".
--   core.survey_response   Typeform and Zigpoll show no deletions through the APIs we read: the column is
--                          there for a source that does, and nothing sets it today.
-- Counts treat them explicitly: ops.count_window (sql/definitions/ops/count_window.sql) counts a deleted
-- record apart (deleted_count), and ops.count_diff keeps that number beside the others.
ALTER TABLE core.referral ADD COLUMN deleted_at timestamptz;
ALTER TABLE core.volunteer_hours ADD COLUMN deleted_at timestamptz;
ALTER TABLE core.support_ticket ADD COLUMN deleted_at timestamptz;
ALTER TABLE core.survey_response ADD COLUMN deleted_at timestamptz;

COMMENT ON COLUMN core.referral.deleted_at IS
    'When the sync saw that ReferralHero no longer lists this subscriber (removed from the campaign); NULL while listed.';
COMMENT ON COLUMN core.volunteer_hours.deleted_at IS
    'When the sync saw this hour record inactive in Galaxy Digital (how Galaxy deletes one); NULL otherwise.';
COMMENT ON COLUMN core.support_ticket.deleted_at IS
    'When the sync saw this ticket with status "deleted" in Zendesk''s incremental export; NULL otherwise.';
COMMENT ON COLUMN core.survey_response.deleted_at IS
    'When the sync saw this response deleted in the survey tool; NULL otherwise (no tool we read reports it yet).';

-- Roles that read a table column by column (support tickets) may read the new column beside the status.
DO $$
DECLARE grantee text;
BEGIN
    FOR grantee IN SELECT DISTINCT p.grantee FROM information_schema.column_privileges p
                   WHERE p.table_schema = 'core' AND p.table_name = 'support_ticket' AND p.column_name = 'status'
                     AND p.privilege_type = 'SELECT'
    LOOP
        EXECUTE format('GRANT SELECT (deleted_at) ON core.support_ticket TO %I', grantee);
    END LOOP;
END
$$;

ALTER TABLE ops.count_diff ADD COLUMN deleted_count bigint NOT NULL DEFAULT 0;
COMMENT ON COLUMN ops.count_diff.deleted_count IS
    'Records of the window that reached core and were deleted at the source since: no longer counted by the source, not a loss.';
