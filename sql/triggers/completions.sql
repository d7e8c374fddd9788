-- Course completions with what their triggers need: the surviving person (a record merged away rolls up to
-- its survivor), the course, and the name to print on the certificate. Erased people are left out: nothing
-- is ever triggered for them. %(completed_since)s (NULL: all) limits a go-live or a backfill to a period.
SELECT cc.completion_id::text AS completion_id,
       cc.source,
       cc.source_record_id,
       cc.completed_at,
       survivor.person_id::text AS person_id,
       survivor.given_name,
       survivor.family_name,
       c.course_id::text AS course_id,
       c.source || ':' || c.source_record_id AS course_reference,
       c.title AS course_title
FROM core.course_completion cc
JOIN core.person p ON p.person_id = cc.person_id
JOIN core.person survivor ON survivor.person_id = coalesce(p.merged_into, p.person_id)
JOIN core.course c ON c.course_id = cc.course_id
WHERE survivor.erased_at IS NULL
  AND (%(completed_since)s::timestamptz IS NULL OR cc.completed_at >= %(completed_since)s::timestamptz)
ORDER BY cc.completed_at, cc.completion_id
