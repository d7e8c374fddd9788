-- Givers of the legacy donor spreadsheet → incoming_people (then ../sync/_resolve_people.sql, source
-- legacy_donors, people_update 'fill'): one giver per normalised email and name (a household often
-- shares one email), described by the earliest gift; the name column is "given family", split at the
-- first space as for a Stripe billing name.
CREATE TEMP TABLE incoming_people ON COMMIT DROP AS
SELECT g.email_key AS source_record_id,
       (array_agg(nullif(split_part(g.name, ' ', 1), '') ORDER BY g.gift_date, g.donor_ref))[1] AS given_name,
       (array_agg(nullif(trim(substr(g.name, length(split_part(g.name, ' ', 1)) + 1)), '')
                  ORDER BY g.gift_date, g.donor_ref))[1] AS family_name,
       (array_agg(g.email ORDER BY g.gift_date, g.donor_ref))[1] AS email,
       NULL::text AS phone,
       NULL::date AS date_of_birth,
       NULL::text AS country,
       min(g.gift_date)::timestamp AT TIME ZONE 'UTC' AS observed_at,
       false AS is_learner,
       true AS is_donor,
       NULL::uuid AS person_id,
       false AS is_new
FROM legacy_gifts g
GROUP BY g.email_key;
