-- 0029 The auditor's evidence pack (issue 19, part 5): `cdp audit evidence --month YYYY-MM` and the
-- cdp_evidence DAG.
--
-- PostgreSQL logs no GRANT, REVOKE or CREATE ROLE. So each evidence run stores what the catalog grants
-- (every login and application role on every table of the pack) as a privilege snapshot, labelled with the
-- month it closes, and the pack diffs a month's snapshot against the previous month's: the access changes.
-- A snapshot is appended, never changed (no role may update or delete one); a re-run for a month whose
-- privileges changed since its last snapshot appends a newer one for that month (the latest counts).

CREATE TABLE ops.privilege_snapshot (
    snapshot_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    month       date NOT NULL CHECK (extract(day FROM month) = 1),
    taken_at    timestamptz NOT NULL DEFAULT now(),
    taken_by    text NOT NULL DEFAULT session_user,
    -- sha256 of the canonical JSON of principals and privileges: an unchanged catalog stores nothing new
    digest      text NOT NULL CHECK (digest ~ '^[0-9a-f]{64}$'),
    principals  jsonb NOT NULL,   -- [{name, login, superuser, bypassrls, createrole, member_of[]}], sorted
    privileges  jsonb NOT NULL    -- [{grantee, kind, object, privileges, select_columns, ...}], sorted
);
CREATE INDEX privilege_snapshot_month ON ops.privilege_snapshot (month, snapshot_id DESC);
COMMENT ON TABLE ops.privilege_snapshot IS
    'What the catalog granted each login and application role on the evidence pack''s tables, per month '
    '(`cdp audit evidence`); append-only. Diffs of these are the pack''s access changes.';

-- The pack's own role: what the cdp_evidence DAG's login (AIRFLOW_CONN_WAREHOUSE_EVIDENCE) is a member of.
-- It reads the catalog (public to every role: pg_roles, pg_auth_members, has_*_privilege), the donation
-- corrections, the reconciliation's results, the audit trail it verifies and its own snapshots. It reads no
-- core table (who may read one is in the catalog; what changed is in the trail), writes nothing but its
-- snapshots and, through audit.record_event, one event per new snapshot.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cdp_evidence') THEN
        CREATE ROLE cdp_evidence NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA ops, audit TO cdp_evidence;
GRANT SELECT, INSERT ON ops.privilege_snapshot TO cdp_evidence;
-- Changes to donations: the reviewed corrections (requester and approver).
GRANT SELECT ON ops.donation_correction TO cdp_evidence;
-- The reconciliation sign-off: the month's runs, totals, differing rows and finance's explanations.
GRANT SELECT ON ops.reconciliation_run, ops.reconciliation_total, ops.reconciliation_result,
    ops.reconciliation_explanation TO cdp_evidence;
-- The audit chain: verifying it recomputes each row's hash from the whole row (so every column is read; the
-- row images hold no personal field since 0012, those sit in audit.personal_image, which it cannot read),
-- checks the personal images' seals, and seals what a busy lock left unsealed first. The changes to
-- donations are the trail's row images of core.donation, core.refund and core.donation_soft_credit.
GRANT SELECT ON audit.audit_events TO cdp_evidence;
-- Which tables hold personal columns: the pack lists the privileges on each of them.
GRANT SELECT ON audit.personal_column TO cdp_evidence;
-- Its function grants, also in sql/definitions/audit/ (personal_image.sql, audit_events.sql; audit.seal() is
-- granted there only): the personal images' seals, and one audit event per new snapshot.
GRANT EXECUTE ON FUNCTION audit.personal_image_seals() TO cdp_evidence;
GRANT EXECUTE ON FUNCTION audit.record_event(text, text, text, jsonb, jsonb, jsonb) TO cdp_evidence;
