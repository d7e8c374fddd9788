-- Completions into core.course_completion (after references.sql has quarantined orphans).
INSERT INTO core.course_completion (person_id, course_id, enrollment_id, completed_at, source, source_record_id)
SELECT DISTINCT ON (b.source_record_id)
       coalesce(p.merged_into, p.person_id), c.course_id,
       (SELECT e.enrollment_id FROM core.enrollment e
         WHERE e.person_id = coalesce(p.merged_into, p.person_id) AND e.course_id = c.course_id
         ORDER BY e.enrolled_at, e.enrollment_id LIMIT 1),
       to_timestamp((b.payload ->> 'timecompleted')::bigint),
       'moodle', b.source_record_id
FROM sync_batch b
JOIN core.person_source_id m ON m.source = 'moodle.user' AND m.source_record_id = b.payload ->> 'userid'
JOIN core.person p ON p.person_id = m.person_id
JOIN core.course c ON c.source = 'moodle' AND c.source_record_id = b.payload ->> 'course'
WHERE b.reason IS NULL
ORDER BY b.source_record_id, b.seq DESC
ON CONFLICT (source, source_record_id) DO UPDATE
SET person_id = excluded.person_id, course_id = excluded.course_id, enrollment_id = excluded.enrollment_id,
    completed_at = excluded.completed_at, updated_at = now()
WHERE (core.course_completion.person_id, core.course_completion.course_id, core.course_completion.enrollment_id,
       core.course_completion.completed_at)
      IS DISTINCT FROM (excluded.person_id, excluded.course_id, excluded.enrollment_id, excluded.completed_at);
