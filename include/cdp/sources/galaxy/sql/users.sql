-- Galaxy Digital users → core.volunteer, one row per platform user, pointing to the resolved person.
INSERT INTO core.volunteer (person_id, status, registered_at, source, source_record_id)
SELECT DISTINCT ON (b.source_record_id)
       i.person_id, b.payload ->> 'user_status', (b.payload ->> 'created_at')::timestamptz,
       'galaxy', b.source_record_id
FROM sync_batch b
JOIN incoming_people i ON i.source_record_id = b.source_record_id
WHERE b.reason IS NULL
ORDER BY b.source_record_id, b.seq DESC
ON CONFLICT (source, source_record_id) DO UPDATE
SET person_id = excluded.person_id, status = excluded.status, registered_at = excluded.registered_at,
    updated_at = now()
WHERE (core.volunteer.person_id, core.volunteer.status, core.volunteer.registered_at)
      IS DISTINCT FROM (excluded.person_id, excluded.status, excluded.registered_at);
