-- Active learners on a day: learners (not merged, not erased) with an enrolment in the year before it, with
-- what the pilot stratifies on: country, date of birth (for the age band) and the year of the first enrolment
-- (the cohort, by year).
SELECT p.person_id::text AS person_id,
       p.country,
       p.date_of_birth,
       date_trunc('year', min(e.enrolled_at) AT TIME ZONE 'UTC')::date AS cohort
FROM core.person p
JOIN core.enrollment e ON e.person_id = p.person_id
WHERE p.is_learner AND p.merged_into IS NULL AND p.erased_at IS NULL
  AND e.enrolled_at < %(as_of)s::date + 1
GROUP BY p.person_id, p.country, p.date_of_birth
HAVING max(e.enrolled_at) >= %(as_of)s::date - %(active_days)s::integer;
