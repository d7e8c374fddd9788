-- Moodle activity records point to a learner and a course already in core; a record whose learner or
-- course is not there is kept in quarantine with the reason (the id it names apart, in reason_value). Parameters: course_field.
UPDATE sync_batch b
SET reason = 'unknown learner: the moodle user in userid is not in the warehouse', reason_value = b.payload ->> 'userid'
WHERE b.reason IS NULL
  AND NOT EXISTS (SELECT 1 FROM core.person_source_id m
                  WHERE m.source = 'moodle.user' AND m.source_record_id = b.payload ->> 'userid');

UPDATE sync_batch b
SET reason = 'unknown course: the moodle course in ' || %(course_field)s::text || ' is not in the warehouse',
    reason_value = b.payload ->> %(course_field)s
WHERE b.reason IS NULL
  AND NOT EXISTS (SELECT 1 FROM core.course c
                  WHERE c.source = 'moodle' AND c.source_record_id = b.payload ->> %(course_field)s);
