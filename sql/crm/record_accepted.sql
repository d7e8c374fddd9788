-- A record the CRM accepted: the hashes of the fields sent and the record's last change as read back.
-- Parameters: person, crm_id, hashes (jsonb text), modified, by, run.
INSERT INTO ops.crm_push_state AS s (person_id, external_id, crm_id, field_hashes, crm_last_modified,
                                     crm_last_modified_by, last_pushed_at, last_run_id)
VALUES (%(person)s::uuid, %(person)s::text, %(crm_id)s, %(hashes)s::jsonb, %(modified)s, %(by)s, now(), %(run)s)
ON CONFLICT (person_id) DO UPDATE SET
    crm_id = excluded.crm_id,
    field_hashes = s.field_hashes || excluded.field_hashes,
    crm_last_modified = excluded.crm_last_modified,
    crm_last_modified_by = excluded.crm_last_modified_by,
    last_pushed_at = now(),
    last_run_id = excluded.last_run_id
