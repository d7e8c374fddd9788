-- Resolve the people in temp table incoming_people to person ids, by exact keys only:
--   1. the source record id already mapped in core.person_source_id (following a merge to its survivor);
--   2. else the exact key (normalised email, given name), only where it is unambiguous: exactly one known
--      person holds that key (a person merged into another holds its keys as that survivor: the record
--      joins the survivor rather than becoming a new duplicate, and merging one of two holders of a key
--      into a third leaves the key ambiguous, so no record is joined to the other holder on its account), and the known person and the incoming records with the key carry at most one
--      birth date between them. A family sharing one email stays several people (their given names
--      differ), and so do a father and son of the same name (their birth dates differ). Two new records
--      of one batch are never joined here: without a known person to agree with, that is the dedupe's call;
--   3. else a new person.
-- Fuzzy matching is the nightly dedupe's job. Parameters: person_source.

-- Temp tables get no statistics from autovacuum: without them the planner picks nested loops and a
-- 10k-person batch takes minutes instead of a fraction of a second.
ANALYZE incoming_people;

-- precedence orders several records of one person: with people_update = 'overwrite' the most recently
-- changed record speaks first, with 'fill' the earliest; observed_at is the record's own change time at
-- the source (streams that know none leave it out and fall back to the record id).
ALTER TABLE incoming_people ADD COLUMN exact_key text, ADD COLUMN IF NOT EXISTS observed_at timestamptz,
    ADD COLUMN precedence double precision;
UPDATE incoming_people
SET precedence = CASE WHEN %(people_update)s = 'fill' THEN 1 ELSE -1 END * extract(epoch FROM observed_at);

UPDATE incoming_people i
SET person_id = coalesce(p.merged_into, m.person_id)
FROM core.person_source_id m
JOIN core.person p ON p.person_id = m.person_id
WHERE m.source = %(person_source)s AND m.source_record_id = i.source_record_id;

UPDATE incoming_people
SET exact_key = lower(trim(email)) || '|' || lower(trim(given_name))
WHERE person_id IS NULL AND nullif(trim(email), '') IS NOT NULL AND nullif(trim(given_name), '') IS NOT NULL;

WITH known AS (
    SELECT email_normalized || '|' || lower(trim(given_name)) AS exact_key,
           min(coalesce(merged_into, person_id)::text)::uuid AS person_id,
           count(DISTINCT coalesce(merged_into, person_id)) AS people,
           array_agg(DISTINCT date_of_birth) FILTER (WHERE date_of_birth IS NOT NULL) AS births
    FROM core.person
    WHERE email_normalized IS NOT NULL AND given_name IS NOT NULL
    GROUP BY 1
), incoming AS (
    SELECT exact_key, array_agg(DISTINCT date_of_birth) FILTER (WHERE date_of_birth IS NOT NULL) AS births
    FROM incoming_people
    WHERE exact_key IS NOT NULL
    GROUP BY 1
), unambiguous AS (
    SELECT i.exact_key, k.person_id
    FROM incoming i
    JOIN known k USING (exact_key)
    WHERE k.people = 1
      AND (SELECT count(DISTINCT birth) FROM unnest(coalesce(i.births, '{}') || coalesce(k.births, '{}')) AS birth) <= 1
)
UPDATE incoming_people i
SET person_id = u.person_id
FROM unambiguous u
WHERE i.exact_key = u.exact_key AND i.person_id IS NULL;

UPDATE incoming_people SET person_id = gen_random_uuid(), is_new = true WHERE person_id IS NULL;

-- The incoming values per person: several records of a batch may be one person. Each value is the first
-- non-missing one in precedence order, which is what one record after another would have left.
CREATE TEMP TABLE incoming_values ON COMMIT DROP AS
SELECT person_id, bool_or(is_new) AS is_new,
       (array_agg(given_name ORDER BY precedence NULLS LAST, source_record_id) FILTER (WHERE given_name IS NOT NULL))[1] AS given_name,
       (array_agg(family_name ORDER BY precedence NULLS LAST, source_record_id) FILTER (WHERE family_name IS NOT NULL))[1] AS family_name,
       (array_agg(date_of_birth ORDER BY precedence NULLS LAST, source_record_id) FILTER (WHERE date_of_birth IS NOT NULL))[1] AS date_of_birth,
       (array_agg(email ORDER BY precedence NULLS LAST, source_record_id) FILTER (WHERE email IS NOT NULL))[1] AS email,
       (array_agg(phone ORDER BY precedence NULLS LAST, source_record_id) FILTER (WHERE phone IS NOT NULL))[1] AS phone,
       (array_agg(country ORDER BY precedence NULLS LAST, source_record_id) FILTER (WHERE country IS NOT NULL))[1] AS country,
       bool_or(is_learner) AS is_learner, bool_or(is_donor) AS is_donor,
       CASE WHEN %(people_update)s = 'fill' THEN min(observed_at) ELSE max(observed_at) END AS observed_at
FROM incoming_people
GROUP BY person_id;

INSERT INTO core.person (person_id, given_name, family_name, date_of_birth, email, email_normalized, phone,
                         country, jurisdiction, is_learner, is_donor, values_observed_at)
SELECT person_id, given_name, family_name, date_of_birth, email, lower(trim(email)), phone, country, country,
       is_learner, is_donor, observed_at
FROM incoming_values
WHERE is_new;

-- Known people: with people_update = 'overwrite' the source's values replace the known ones unless the
-- known ones were stated later (a backfill, a late record); with 'fill', or when older, they only fill what
-- is missing. A missing value never blanks a known one. No-op rows are skipped so that a re-run writes
-- (and audits) nothing.
WITH incoming AS (
    SELECT i.person_id,
           greatest(p.values_observed_at, i.observed_at) AS observed_at,
           CASE WHEN %(people_update)s = 'fill' OR i.observed_at < p.values_observed_at THEN coalesce(p.given_name, i.given_name) ELSE coalesce(i.given_name, p.given_name) END AS given_name,
           CASE WHEN %(people_update)s = 'fill' OR i.observed_at < p.values_observed_at THEN coalesce(p.family_name, i.family_name) ELSE coalesce(i.family_name, p.family_name) END AS family_name,
           CASE WHEN %(people_update)s = 'fill' OR i.observed_at < p.values_observed_at THEN coalesce(p.date_of_birth, i.date_of_birth) ELSE coalesce(i.date_of_birth, p.date_of_birth) END AS date_of_birth,
           CASE WHEN %(people_update)s = 'fill' OR i.observed_at < p.values_observed_at THEN coalesce(p.email, i.email) ELSE coalesce(i.email, p.email) END AS email,
           CASE WHEN %(people_update)s = 'fill' OR i.observed_at < p.values_observed_at THEN coalesce(p.phone, i.phone) ELSE coalesce(i.phone, p.phone) END AS phone,
           CASE WHEN %(people_update)s = 'fill' OR i.observed_at < p.values_observed_at THEN coalesce(p.country, i.country) ELSE coalesce(i.country, p.country) END AS country,
           p.is_learner OR i.is_learner AS is_learner,
           p.is_donor OR i.is_donor AS is_donor
    FROM incoming_values i
    JOIN core.person p ON p.person_id = i.person_id
    WHERE NOT i.is_new
)
UPDATE core.person p
SET given_name = i.given_name, family_name = i.family_name, date_of_birth = i.date_of_birth, email = i.email,
    email_normalized = coalesce(lower(trim(i.email)), p.email_normalized), phone = i.phone,
    country = i.country, jurisdiction = coalesce(i.country, p.jurisdiction),
    is_learner = i.is_learner, is_donor = i.is_donor, values_observed_at = i.observed_at, updated_at = now()
FROM incoming i
WHERE p.person_id = i.person_id
  AND (p.given_name, p.family_name, p.date_of_birth, p.email, p.phone, p.country, p.is_learner, p.is_donor,
       p.values_observed_at)
      IS DISTINCT FROM
      (i.given_name, i.family_name, i.date_of_birth, i.email, i.phone, i.country, i.is_learner, i.is_donor,
       i.observed_at);

INSERT INTO core.person_source_id (source, source_record_id, person_id)
SELECT %(person_source)s, source_record_id, person_id
FROM incoming_people
ON CONFLICT (source, source_record_id) DO NOTHING;

-- The activity SQL that follows joins these tables; fresh statistics keep that a hash join even when this
-- transaction has just grown them from nothing (a first sync), instead of a nested loop over each row.
ANALYZE core.person, core.person_source_id;
