-- The payer of a Stripe charge, keyed by Stripe customer id, else by the billing email.
CREATE TEMP TABLE incoming_people ON COMMIT DROP AS
SELECT DISTINCT ON (payer.key)
       payer.key AS source_record_id,
       nullif(split_part(payer.name, ' ', 1), '') AS given_name,
       nullif(trim(substr(payer.name, length(split_part(payer.name, ' ', 1)) + 1)), '') AS family_name,
       payer.email,
       payer.phone,
       NULL::date AS date_of_birth,
       payer.country,
       false AS is_learner,
       true AS is_donor,
       NULL::uuid AS person_id,
       false AS is_new
FROM (
    SELECT coalesce(b.payload ->> 'customer', lower(trim(b.payload #>> '{billing_details,email}'))) AS key,
           trim(coalesce(b.payload #>> '{billing_details,name}', '')) AS name,
           nullif(trim(b.payload #>> '{billing_details,email}'), '') AS email,
           b.payload #>> '{billing_details,phone}' AS phone,
           b.payload #>> '{billing_details,address,country}' AS country,
           b.seq
    FROM sync_batch b
    WHERE b.reason IS NULL
) payer
WHERE payer.key IS NOT NULL
ORDER BY payer.key, payer.seq DESC;
