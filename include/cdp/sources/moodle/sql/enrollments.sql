-- Enrollments into core.enrollment (after references.sql has quarantined orphans).
INSERT INTO core.enrollment (person_id, course_id, status, enrolled_at, source, source_record_id)
SELECT DISTINCT ON (b.source_record_id)
       coalesce(p.merged_into, p.person_id), c.course_id,
       CASE b.payload ->> 'status' WHEN '0' THEN 'active' ELSE 'suspended' END,
       -- timestart 0 is Moodle's "no start restriction": the enrolment then dates from its creation.
       to_timestamp(coalesce(nullif((b.payload ->> 'timestart')::bigint, 0), (b.payload ->> 'timecreated')::bigint)),
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

-- A completion that landed before its enrollment (streams run in parallel, pages arrive late) is linked
-- now, to the earliest enrollment of that person in that course, as the completion SQL would have linked it.
UPDATE core.course_completion k
SET enrollment_id = first.enrollment_id, updated_at = now()
FROM (
    SELECT DISTINCT ON (e.person_id, e.course_id) e.person_id, e.course_id, e.enrollment_id
    FROM core.enrollment e
    WHERE (e.person_id, e.course_id) IN (
        SELECT coalesce(p.merged_into, p.person_id), c.course_id
        FROM sync_batch b
        JOIN core.person_source_id m ON m.source = 'moodle.user' AND m.source_record_id = b.payload ->> 'userid'
        JOIN core.person p ON p.person_id = m.person_id
        JOIN core.course c ON c.source = 'moodle' AND c.source_record_id = b.payload ->> 'courseid'
        WHERE b.reason IS NULL)
    ORDER BY e.person_id, e.course_id, e.enrolled_at, e.enrollment_id
) first
WHERE k.person_id = first.person_id AND k.course_id = first.course_id
  AND k.enrollment_id IS DISTINCT FROM first.enrollment_id;
