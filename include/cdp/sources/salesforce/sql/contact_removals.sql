-- Contacts deleted or merged in the CRM (read with queryAll: IsDeleted, MasterRecordId), applied as audited
-- soft deletes: the contact's source identity gets deleted_at (the person and their other sources stay),
-- core.crm_record_removal keeps what the CRM said, and a merge of two contacts that are two persons here
-- is queued for a person to review (ops.identity_pair), never merged on its own. A contact restored from
-- the recycle bin comes back as an ordinary record: its removal is closed and its identity active again.
CREATE TEMP TABLE crm_contact_states ON COMMIT DROP AS
SELECT DISTINCT ON (b.source_record_id)
       b.source_record_id,
       coalesce((b.payload ->> 'IsDeleted')::boolean, false) AS is_deleted,
       nullif(b.payload ->> 'MasterRecordId', '') AS master_record_id,
       (b.payload ->> 'SystemModstamp')::timestamptz AS modified_at
FROM sync_batch b
WHERE b.reason IS NULL AND b.source_record_id IS NOT NULL
ORDER BY b.source_record_id, b.seq DESC;

INSERT INTO core.crm_record_removal (source, sobject, source_record_id, kind, master_record_id, person_id,
                                     master_person_id, removed_at, run_id)
SELECT %(source)s, %(stream)s, s.source_record_id,
       CASE WHEN s.master_record_id IS NULL THEN 'deleted' ELSE 'merged' END,
       s.master_record_id,
       coalesce(p.merged_into, p.person_id),
       coalesce(mp.merged_into, mp.person_id),
       s.modified_at, %(run_id)s
FROM crm_contact_states s
LEFT JOIN core.person_source_id m ON m.source = %(person_source)s AND m.source_record_id = s.source_record_id
LEFT JOIN core.person p ON p.person_id = m.person_id
LEFT JOIN core.person_source_id mm ON mm.source = %(person_source)s AND mm.source_record_id = s.master_record_id
LEFT JOIN core.person mp ON mp.person_id = mm.person_id
WHERE s.is_deleted
ON CONFLICT (source, sobject, source_record_id) DO UPDATE
SET kind = excluded.kind, master_record_id = excluded.master_record_id,
    person_id = coalesce(excluded.person_id, core.crm_record_removal.person_id),
    master_person_id = coalesce(excluded.master_person_id, core.crm_record_removal.master_person_id),
    removed_at = excluded.removed_at, run_id = excluded.run_id, restored_at = NULL, updated_at = now()
WHERE (core.crm_record_removal.kind, core.crm_record_removal.master_record_id, core.crm_record_removal.removed_at,
       core.crm_record_removal.restored_at)
      IS DISTINCT FROM (excluded.kind, excluded.master_record_id, excluded.removed_at, NULL::timestamptz);

UPDATE core.person_source_id m
SET deleted_at = s.modified_at, last_seen_at = now()
FROM crm_contact_states s
WHERE s.is_deleted
  AND m.source = %(person_source)s AND m.source_record_id = s.source_record_id
  AND m.deleted_at IS DISTINCT FROM s.modified_at;

-- Restored at the source (undeleted from the recycle bin).
UPDATE core.crm_record_removal r
SET restored_at = s.modified_at, updated_at = now()
FROM crm_contact_states s
WHERE NOT s.is_deleted
  AND r.source = %(source)s AND r.sobject = %(stream)s AND r.source_record_id = s.source_record_id
  AND r.restored_at IS NULL;

UPDATE core.person_source_id m
SET deleted_at = NULL
FROM crm_contact_states s
WHERE NOT s.is_deleted
  AND m.source = %(person_source)s AND m.source_record_id = s.source_record_id
  AND m.deleted_at IS NOT NULL;

-- A merge hint: the CRM's staff said these two contacts are one person; here they are two. Queued for
-- review (auto_merge_allowed false), unless the pair was proposed or decided before.
INSERT INTO ops.identity_pair (person_low, person_high, first_run_id, last_run_id, score, match_weight, class,
                               guard, status, auto_merge_allowed)
SELECT DISTINCT ON (least(r.person_id, r.master_person_id), greatest(r.person_id, r.master_person_id))
       least(r.person_id, r.master_person_id), greatest(r.person_id, r.master_person_id), %(run_id)s, %(run_id)s,
       1.0, 0.0, 'match',
       'merged in the CRM: contact ' || r.source_record_id || ' into ' || r.master_record_id, 'queued', false
FROM core.crm_record_removal r
JOIN crm_contact_states s ON s.source_record_id = r.source_record_id AND s.is_deleted
WHERE r.source = %(source)s AND r.sobject = %(stream)s AND r.kind = 'merged'
  AND r.person_id IS NOT NULL AND r.master_person_id IS NOT NULL AND r.person_id <> r.master_person_id
ORDER BY least(r.person_id, r.master_person_id), greatest(r.person_id, r.master_person_id), r.source_record_id
ON CONFLICT (person_low, person_high) DO NOTHING;
