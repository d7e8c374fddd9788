-- ReferralHero subscribers → incoming_people (then _resolve_people.sql). ReferralHero knows a subscriber
-- by name and email only. Besides the shared rules, a subscriber is taken to be the one person who holds
-- their email when their full name is that person's name in either order (ReferralHero shows names as
-- typed; some cultures write the family name first). Nobody else in the batch may use that email under
-- another name, so a family sharing one address stays several people. A subscriber resolved to a known
-- person contributes no name or email: the LMS and CRM stay the authority for those.
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

WITH owners AS (
    SELECT email_normalized, min(person_id::text)::uuid AS person_id, count(*) AS people,
           min(lower(coalesce(given_name, ''))) AS given_name, min(lower(coalesce(family_name, ''))) AS family_name
    FROM core.person
    WHERE email_normalized IS NOT NULL AND merged_into IS NULL
    GROUP BY email_normalized
), batch AS (
    SELECT lower(trim(email)) AS email_normalized, count(DISTINCT full_name) AS names
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
  AND i.full_name IN (trim(o.given_name || ' ' || o.family_name), trim(o.family_name || ' ' || o.given_name));

UPDATE incoming_people
SET given_name = NULL, family_name = NULL, email = NULL, phone = NULL
WHERE person_id IS NOT NULL;
