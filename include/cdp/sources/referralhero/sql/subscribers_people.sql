-- ReferralHero subscribers → incoming_people (then _resolve_people.sql). ReferralHero knows a subscriber
-- by name and email only. Besides the shared rules, a subscriber is the person who holds their email
-- under exactly their full name (in either order: ReferralHero shows names as typed, and some cultures
-- write the family name first), when exactly one person does: a family sharing one address is told apart
-- by name, and two people with the same name and address are left to the nightly dedupe. A subscriber
-- resolved to a known person contributes no name or email: the LMS and CRM stay the authority for those.
CREATE TEMP TABLE incoming_people ON COMMIT DROP AS
SELECT DISTINCT ON (b.source_record_id)
       b.source_record_id,
       nullif(split_part(trim(b.payload ->> 'name'), ' ', 1), '') AS given_name,
       nullif(trim(substr(trim(b.payload ->> 'name'), length(split_part(trim(b.payload ->> 'name'), ' ', 1)) + 1)), '')
           AS family_name,
       nullif(trim(b.payload ->> 'email'), '') AS email,
       nullif(b.payload ->> 'phone_number', '') AS phone,
       NULL::date AS date_of_birth,
       NULL::text AS country,
       false AS is_learner,
       false AS is_donor,
       NULL::uuid AS person_id,
       false AS is_new,
       lower(trim(b.payload ->> 'name')) AS full_name
FROM sync_batch b
WHERE b.reason IS NULL
ORDER BY b.source_record_id, b.seq DESC;

UPDATE incoming_people i
SET person_id = coalesce(p.merged_into, m.person_id)
FROM core.person_source_id m
JOIN core.person p ON p.person_id = m.person_id
WHERE m.source = %(person_source)s AND m.source_record_id = i.source_record_id;

WITH candidates AS (
    SELECT i.source_record_id, min(coalesce(p.merged_into, p.person_id)::text)::uuid AS person_id,
           count(DISTINCT coalesce(p.merged_into, p.person_id)) AS people
    FROM incoming_people i
    JOIN core.person p
      ON p.email_normalized = lower(trim(i.email))
     AND i.full_name IN (lower(trim(coalesce(p.given_name, '') || ' ' || coalesce(p.family_name, ''))),
                         lower(trim(coalesce(p.family_name, '') || ' ' || coalesce(p.given_name, ''))))
    WHERE i.person_id IS NULL
    GROUP BY i.source_record_id
)
UPDATE incoming_people i
SET person_id = c.person_id
FROM candidates c
WHERE c.source_record_id = i.source_record_id AND c.people = 1;

UPDATE incoming_people
SET given_name = NULL, family_name = NULL, email = NULL, phone = NULL
WHERE person_id IS NOT NULL;

-- Fresh statistics for the temp table, or the planner guesses its size and the email join goes quadratic.
ANALYZE incoming_people;
