-- Activity rows now on the survivor of a merge that came in through one of the absorbed person's source
-- identities (read from the raw payload the row was built from): on unmerge they go back to the absorbed
-- person, including rows that syncs attached after the merge. One branch per synced activity stream; a new
-- stream whose rows point to a person adds a branch here (rows of streams without one stay with the
-- survivor and are counted by the unmerge).
-- Parameters: survivor (uuid), identities (jsonb array of {source, source_record_id}).
WITH identities AS (
    SELECT i.source, i.source_record_id
    FROM jsonb_to_recordset(%(identities)s::jsonb) AS i(source text, source_record_id text)
), lineage AS (
    SELECT 'core.enrollment' AS table_name, 'person_id' AS column_name,
           jsonb_build_object('enrollment_id', e.enrollment_id) AS row_key,
           'moodle.user' AS person_source, r.payload ->> 'userid' AS person_record_id
    FROM core.enrollment e
    CROSS JOIN LATERAL (SELECT payload FROM raw.records r
                        WHERE r.source = 'moodle' AND r.stream = 'enrollments'
                          AND r.source_record_id = e.source_record_id
                        ORDER BY r.raw_id DESC LIMIT 1) r
    WHERE e.person_id = %(survivor)s AND e.source = 'moodle'
    UNION ALL
    SELECT 'core.course_completion', 'person_id',
           jsonb_build_object('completion_id', c.completion_id),
           'moodle.user', r.payload ->> 'userid'
    FROM core.course_completion c
    CROSS JOIN LATERAL (SELECT payload FROM raw.records r
                        WHERE r.source = 'moodle' AND r.stream = 'course_completions'
                          AND r.source_record_id = c.source_record_id
                        ORDER BY r.raw_id DESC LIMIT 1) r
    WHERE c.person_id = %(survivor)s AND c.source = 'moodle'
    UNION ALL
    SELECT 'core.donation', 'person_id',
           jsonb_build_object('donation_id', d.donation_id),
           'stripe.billing',
           coalesce(r.payload ->> 'customer', lower(trim(r.payload #>> '{billing_details,email}')))
    FROM core.donation d
    CROSS JOIN LATERAL (SELECT payload FROM raw.records r
                        WHERE r.source = 'stripe' AND r.stream = 'charges'
                          AND r.source_record_id = d.source_record_id
                        ORDER BY r.raw_id DESC LIMIT 1) r
    WHERE d.person_id = %(survivor)s AND d.source = 'stripe'
)
SELECT l.table_name, l.column_name, l.row_key
FROM lineage l
JOIN identities i ON i.source = l.person_source AND i.source_record_id = l.person_record_id;
