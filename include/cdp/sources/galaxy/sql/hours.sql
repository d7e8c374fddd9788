-- Galaxy Digital hours → core.volunteer_hours. Galaxy reports decimal hours ("2.25"); they are kept as
-- whole minutes (135), rounded to the nearest minute.
INSERT INTO core.volunteer_hours (volunteer_id, person_id, need_id, served_on, minutes, status, source,
                                  source_record_id)
SELECT DISTINCT ON (b.source_record_id)
       v.volunteer_id, coalesce(p.merged_into, p.person_id), nullif(b.payload ->> 'need_id', ''),
       (b.payload ->> 'hour_date')::date, round((b.payload ->> 'hour_hours')::numeric * 60)::integer,
       b.payload ->> 'hour_status', 'galaxy', b.source_record_id
FROM sync_batch b
JOIN core.volunteer v ON v.source = 'galaxy' AND v.source_record_id = b.payload ->> 'user_id'
JOIN core.person p ON p.person_id = v.person_id
WHERE b.reason IS NULL
ORDER BY b.source_record_id, b.seq DESC
ON CONFLICT (source, source_record_id) DO UPDATE
SET volunteer_id = excluded.volunteer_id, person_id = excluded.person_id, need_id = excluded.need_id,
    served_on = excluded.served_on, minutes = excluded.minutes, status = excluded.status, updated_at = now()
WHERE (core.volunteer_hours.volunteer_id, core.volunteer_hours.person_id, core.volunteer_hours.need_id,
       core.volunteer_hours.served_on, core.volunteer_hours.minutes, core.volunteer_hours.status)
      IS DISTINCT FROM (excluded.volunteer_id, excluded.person_id, excluded.need_id, excluded.served_on,
                        excluded.minutes, excluded.status);
