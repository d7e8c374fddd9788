-- Cleaned legacy enrollments into core: the courses by their legacy code, then each enrollment to the
-- person of its learner (source identity legacy_lms). An enrollment whose learner was not loaded (the
-- learner row waits in ops.legacy_review) is kept in ops.quarantine with the reason, never dropped.
INSERT INTO core.course (source, source_record_id, code, title)
SELECT DISTINCT 'legacy_lms', trim(b.values ->> 'course_code'), trim(b.values ->> 'course_code'),
       'Legacy LMS course ' || trim(b.values ->> 'course_code')
FROM legacy_batch b
ON CONFLICT (source, source_record_id) DO NOTHING;

CREATE TEMP TABLE legacy_enrollment ON COMMIT DROP AS
SELECT b.row_key, b.values, trim(b.values ->> 'enrollment_id') AS enrollment_ref,
       coalesce(p.merged_into, p.person_id) AS person_id, c.course_id,
       lower(trim(b.values ->> 'status')) AS status,
       (trim(b.values ->> 'enrolled_on'))::date::timestamp AT TIME ZONE 'UTC' AS enrolled_at
FROM legacy_batch b
LEFT JOIN core.person_source_id m ON m.source = 'legacy_lms' AND m.source_record_id = trim(b.values ->> 'learner_id')
LEFT JOIN core.person p ON p.person_id = m.person_id
LEFT JOIN core.course c ON c.source = 'legacy_lms' AND c.source_record_id = trim(b.values ->> 'course_code');

INSERT INTO core.enrollment (person_id, course_id, status, enrolled_at, source, source_record_id)
SELECT DISTINCT ON (e.enrollment_ref) e.person_id, e.course_id, e.status, e.enrolled_at, 'legacy_lms', e.enrollment_ref
FROM legacy_enrollment e
WHERE e.person_id IS NOT NULL AND e.status IN ('active', 'suspended', 'completed', 'withdrawn')
ORDER BY e.enrollment_ref, e.row_key
ON CONFLICT (source, source_record_id) DO UPDATE
SET person_id = excluded.person_id, course_id = excluded.course_id, status = excluded.status,
    enrolled_at = excluded.enrolled_at, updated_at = now()
WHERE (core.enrollment.person_id, core.enrollment.course_id, core.enrollment.status, core.enrollment.enrolled_at)
      IS DISTINCT FROM (excluded.person_id, excluded.course_id, excluded.status, excluded.enrolled_at);

INSERT INTO legacy_rejected (row_key, reason, reason_value, values)
SELECT e.row_key,
       CASE WHEN e.person_id IS NULL THEN 'learner in learner_id was not loaded (its LMS row waits in ops.legacy_review)'
            ELSE 'unknown enrollment status' END,
       CASE WHEN e.person_id IS NULL THEN trim(e.values ->> 'learner_id') ELSE e.values ->> 'status' END,
       e.values
FROM legacy_enrollment e
WHERE e.person_id IS NULL OR e.status NOT IN ('active', 'suspended', 'completed', 'withdrawn');
