-- Galaxy Digital responses (a volunteer's sign-up to one shift of a need) → core.volunteer_shift. The
-- volunteer, need and shift are nested objects (user.id, need.id/need_title, shift.id/start/end).
INSERT INTO core.volunteer_shift (volunteer_id, person_id, need_id, need_title, shift_id, starts_at, ends_at,
                                  status, source, source_record_id)
SELECT DISTINCT ON (b.source_record_id)
       v.volunteer_id, coalesce(p.merged_into, p.person_id), b.payload #>> '{need,id}', b.payload #>> '{need,need_title}',
       b.payload #>> '{shift,id}', (b.payload #>> '{shift,start}')::timestamptz, (b.payload #>> '{shift,end}')::timestamptz,
       b.payload ->> 'response_status', 'galaxy', b.source_record_id
FROM sync_batch b
JOIN core.volunteer v ON v.source = 'galaxy' AND v.source_record_id = b.payload #>> '{user,id}'
JOIN core.person p ON p.person_id = v.person_id
WHERE b.reason IS NULL
ORDER BY b.source_record_id, b.seq DESC
ON CONFLICT (source, source_record_id) DO UPDATE
SET volunteer_id = excluded.volunteer_id, person_id = excluded.person_id, need_id = excluded.need_id,
    need_title = excluded.need_title, shift_id = excluded.shift_id, starts_at = excluded.starts_at,
    ends_at = excluded.ends_at, status = excluded.status, updated_at = now()
WHERE (core.volunteer_shift.volunteer_id, core.volunteer_shift.person_id, core.volunteer_shift.need_id,
       core.volunteer_shift.need_title, core.volunteer_shift.shift_id, core.volunteer_shift.starts_at,
       core.volunteer_shift.ends_at, core.volunteer_shift.status)
      IS DISTINCT FROM (excluded.volunteer_id, excluded.person_id, excluded.need_id, excluded.need_title,
                        excluded.shift_id, excluded.starts_at, excluded.ends_at, excluded.status);
