-- One CRM push run's plan counts (parameters: the fields of cdp.crm.plan.PushResult by name). A re-run of
-- the same run id starts its counts afresh.
INSERT INTO ops.crm_push_run (run_id, dry_run, people_considered, creates, updates, unchanged, fields_changed,
                              conflicts_new, conflicts_open, report_path, links_planned, linked, link_failed,
                              contacts_in_review)
VALUES (%(run_id)s, %(dry_run)s, %(people_considered)s, %(creates)s, %(updates)s, %(unchanged)s,
        %(fields_changed)s, %(conflicts_new)s, %(conflicts_open)s, %(report_path)s, %(links_planned)s,
        %(linked)s, %(link_failed)s, %(contacts_in_review)s)
ON CONFLICT (run_id) DO UPDATE SET
    dry_run = excluded.dry_run, started_at = now(), finished_at = NULL,
    people_considered = excluded.people_considered, creates = excluded.creates, updates = excluded.updates,
    unchanged = excluded.unchanged, fields_changed = excluded.fields_changed,
    conflicts_new = excluded.conflicts_new, conflicts_open = excluded.conflicts_open,
    report_path = excluded.report_path, links_planned = excluded.links_planned, linked = excluded.linked,
    link_failed = excluded.link_failed, contacts_in_review = excluded.contacts_in_review,
    sent = 0, accepted = 0, rejected = 0, verified = 0, reconciled = NULL
