-- Galaxy Digital hours → core.volunteer_hours. Galaxy reports decimal hours ("2.25"); they are kept as
-- whole minutes (135), rounded to the nearest minute. The day served is hour_date_start's. Galaxy's
-- statuses map to ours: denied → declined, entered (submitted, not reviewed) → pending. Galaxy deletes an
-- hour record by marking it inactive (listed with show_inactive=Yes): that sets deleted_at (revision 0024,
-- recorded by the table's audit trigger) and keeps the status it had; active again clears it.
INSERT INTO core.volunteer_hours (volunteer_id, person_id, need_id, served_on, minutes, status, source,
                                  source_record_id, deleted_at)
SELECT DISTINCT ON (b.source_record_id)
       v.volunteer_id, coalesce(p.merged_into, p.person_id), nullif(b.payload #>> '{need,id}', ''),
       (b.payload ->> 'hour_date_start')::timestamp::date, round((b.payload ->> 'hour_hours')::numeric * 60)::integer,
       CASE b.payload ->> 'hour_status' WHEN 'denied' THEN 'declined' WHEN 'entered' THEN 'pending'
                                       WHEN 'inactive' THEN 'pending' ELSE b.payload ->> 'hour_status' END,
       'galaxy', b.source_record_id,
       CASE WHEN b.payload ->> 'hour_status' = 'inactive' THEN now() END
FROM sync_batch b
JOIN core.volunteer v ON v.source = 'galaxy' AND v.source_record_id = b.payload #>> '{user,id}'
JOIN core.person p ON p.person_id = v.person_id
WHERE b.reason IS NULL
ORDER BY b.source_record_id, b.seq DESC
ON CONFLICT (source, source_record_id) DO UPDATE
SET volunteer_id = excluded.volunteer_id, person_id = excluded.person_id, need_id = excluded.need_id,
    served_on = excluded.served_on, minutes = excluded.minutes,
    status = CASE WHEN excluded.deleted_at IS NULL THEN excluded.status ELSE core.volunteer_hours.status END,
    deleted_at = CASE WHEN excluded.deleted_at IS NULL THEN NULL
                      ELSE coalesce(core.volunteer_hours.deleted_at, excluded.deleted_at) END,
    updated_at = now()
WHERE (core.volunteer_hours.volunteer_id, core.volunteer_hours.person_id, core.volunteer_hours.need_id,
       core.volunteer_hours.served_on, core.volunteer_hours.minutes,
       CASE WHEN excluded.deleted_at IS NULL THEN excluded.status ELSE core.volunteer_hours.status END,
       core.volunteer_hours.deleted_at IS NULL)
      IS DISTINCT FROM (excluded.volunteer_id, excluded.person_id, excluded.need_id, excluded.served_on,
                        excluded.minutes, core.volunteer_hours.status, excluded.deleted_at IS NULL);
