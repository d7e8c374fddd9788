-- The payer of a Stripe charge, keyed by Stripe customer id, else by the billing email.
-- A billing name is typed afresh at each payment and is no statement about the person, so the payer is
-- described by its earliest charge and later charges only fill in what is still missing (the stream runs
-- _resolve_people.sql with people_update = 'fill'). Earliest-first is what keeps the result the same
-- whether the charges arrive over many runs or in one catch-up run.
CREATE TEMP TABLE incoming_people ON COMMIT DROP AS
SELECT payer.key AS source_record_id,
       (array_agg(nullif(split_part(payer.name, ' ', 1), '') ORDER BY payer.created, payer.id))[1] AS given_name,
       (array_agg(nullif(trim(substr(payer.name, length(split_part(payer.name, ' ', 1)) + 1)), '')
                  ORDER BY payer.created, payer.id))[1] AS family_name,
       (array_agg(payer.email ORDER BY payer.created, payer.id) FILTER (WHERE payer.email IS NOT NULL))[1] AS email,
       (array_agg(payer.phone ORDER BY payer.created, payer.id) FILTER (WHERE payer.phone IS NOT NULL))[1] AS phone,
       NULL::date AS date_of_birth,
       (array_agg(payer.country ORDER BY payer.created, payer.id) FILTER (WHERE payer.country IS NOT NULL))[1]
           AS country,
       to_timestamp(min(payer.created)) AS observed_at,
       false AS is_learner,
       true AS is_donor,
       NULL::uuid AS person_id,
       false AS is_new
FROM (
    SELECT coalesce(b.payload ->> 'customer', lower(trim(b.payload #>> '{billing_details,email}'))) AS key,
           trim(coalesce(b.payload #>> '{billing_details,name}', '')) AS name,
           nullif(trim(b.payload #>> '{billing_details,email}'), '') AS email,
           nullif(b.payload #>> '{billing_details,phone}', '') AS phone,
           nullif(b.payload #>> '{billing_details,address,country}', '') AS country,
           (b.payload ->> 'created')::bigint AS created,
           b.source_record_id AS id
    FROM sync_batch b
    WHERE b.reason IS NULL
) payer
WHERE payer.key IS NOT NULL
GROUP BY payer.key;
