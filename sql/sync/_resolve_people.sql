-- Resolve the people in temp table incoming_people to person ids, by exact keys only:
--   1. the source record id already mapped in core.person_source_id (following a merge to its survivor);
--   2. else a normalised email, only where it is unambiguous: exactly one person holds it, nobody else in
--      this batch uses it under another given name, and the given names agree (a family sharing one email
--      stays several people);
--   3. else a new person.
-- Fuzzy matching is the nightly dedupe's job. Parameters: person_source.

-- Temp tables get no statistics from autovacuum: without them the planner picks nested loops and a
-- 10k-person batch takes minutes instead of a fraction of a second.
ANALYZE incoming_people;

UPDATE incoming_people i
SET person_id = coalesce(p.merged_into, m.person_id)
FROM core.person_source_id m
JOIN core.person p ON p.person_id = m.person_id
WHERE m.source = %(person_source)s AND m.source_record_id = i.source_record_id;

WITH owners AS (
    SELECT email_normalized, min(person_id::text)::uuid AS person_id, count(*) AS people,
           min(lower(given_name)) AS given_name
    FROM core.person
    WHERE email_normalized IS NOT NULL AND merged_into IS NULL
    GROUP BY email_normalized
), batch AS (
    SELECT lower(trim(email)) AS email_normalized, count(DISTINCT lower(given_name)) AS names
    FROM incoming_people
    WHERE email IS NOT NULL
    GROUP BY 1
)
UPDATE incoming_people i
SET person_id = o.person_id
FROM owners o
JOIN batch b ON b.email_normalized = o.email_normalized
WHERE i.person_id IS NULL
  AND o.email_normalized = lower(trim(i.email))
  AND o.people = 1
  AND b.names = 1
  AND o.given_name = lower(i.given_name);

UPDATE incoming_people SET person_id = gen_random_uuid(), is_new = true WHERE person_id IS NULL;

INSERT INTO core.person (person_id, given_name, family_name, date_of_birth, email, email_normalized, phone,
                         country, jurisdiction, is_learner, is_donor)
SELECT person_id, given_name, family_name, date_of_birth, email, lower(trim(email)), phone,
       country, country, is_learner, is_donor
FROM incoming_people
WHERE is_new;

-- Known people: newer source values fill in, a missing value never blanks a known one; no-op rows are
-- skipped so that a re-run writes (and audits) nothing.
UPDATE core.person p
SET given_name = coalesce(i.given_name, p.given_name),
    family_name = coalesce(i.family_name, p.family_name),
    date_of_birth = coalesce(i.date_of_birth, p.date_of_birth),
    email = coalesce(i.email, p.email),
    email_normalized = coalesce(lower(trim(i.email)), p.email_normalized),
    phone = coalesce(i.phone, p.phone),
    country = coalesce(i.country, p.country),
    jurisdiction = coalesce(i.country, p.jurisdiction),
    is_learner = p.is_learner OR i.is_learner,
    is_donor = p.is_donor OR i.is_donor,
    updated_at = now()
FROM incoming_people i
WHERE p.person_id = i.person_id
  AND NOT i.is_new
  AND (p.given_name, p.family_name, p.date_of_birth, p.email, p.phone, p.country, p.is_learner, p.is_donor)
      IS DISTINCT FROM
      (coalesce(i.given_name, p.given_name), coalesce(i.family_name, p.family_name),
       coalesce(i.date_of_birth, p.date_of_birth), coalesce(i.email, p.email), coalesce(i.phone, p.phone),
       coalesce(i.country, p.country), p.is_learner OR i.is_learner, p.is_donor OR i.is_donor);

INSERT INTO core.person_source_id (source, source_record_id, person_id)
SELECT %(person_source)s, source_record_id, person_id
FROM incoming_people
ON CONFLICT (source, source_record_id) DO NOTHING;

-- The activity SQL that follows joins these tables; fresh statistics keep that a hash join even when this
-- transaction has just grown them from nothing (a first sync), instead of a nested loop over each row.
ANALYZE core.person, core.person_source_id;
