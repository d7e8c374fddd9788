INSERT INTO core.course (source, source_record_id, code, title, starts_on, ends_on)
SELECT DISTINCT ON (b.source_record_id)
       'moodle', b.source_record_id, b.payload ->> 'shortname', b.payload ->> 'fullname',
       to_timestamp((b.payload ->> 'startdate')::bigint)::date,
       to_timestamp(nullif((b.payload ->> 'enddate')::bigint, 0))::date
FROM sync_batch b
WHERE b.reason IS NULL
ORDER BY b.source_record_id, b.seq DESC
ON CONFLICT (source, source_record_id) DO UPDATE
SET code = excluded.code, title = excluded.title, starts_on = excluded.starts_on, ends_on = excluded.ends_on,
    updated_at = now()
WHERE (core.course.code, core.course.title, core.course.starts_on, core.course.ends_on)
      IS DISTINCT FROM (excluded.code, excluded.title, excluded.starts_on, excluded.ends_on);
