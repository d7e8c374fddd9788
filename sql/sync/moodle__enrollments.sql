-- Enrollments into core.enrollment (after _moodle_references.sql has quarantined orphans).
INSERT INTO core.enrollment (person_id, course_id, status, enrolled_at, source, source_record_id)
SELECT DISTINCT ON (b.source_record_id)
       coalesce(p.merged_into, p.person_id), c.course_id,
       CASE b.payload ->> 'status' WHEN '0' THEN 'active' ELSE 'suspended' END,
       to_timestamp((b.payload ->> 'timestart')::bigint),
       'moodle', b.source_record_id
FROM sync_batch b
JOIN core.person_source_id m ON m.source = 'moodle.user' AND m.source_record_id = b.payload ->> 'userid'
JOIN core.person p ON p.person_id = m.person_id
JOIN core.course c ON c.source = 'moodle' AND c.source_record_id = b.payload ->> 'courseid'
WHERE b.reason IS NULL
ORDER BY b.source_record_id, b.seq DESC
ON CONFLICT (source, source_record_id) DO UPDATE
SET person_id = excluded.person_id, course_id = excluded.course_id, status = excluded.status,
    enrolled_at = excluded.enrolled_at, updated_at = now()
WHERE (core.enrollment.person_id, core.enrollment.course_id, core.enrollment.status, core.enrollment.enrolled_at)
      IS DISTINCT FROM (excluded.person_id, excluded.course_id, excluded.status, excluded.enrolled_at);
