-- Every person not merged away, as the engine compares them, with is_changed for those created or changed
-- since the time given (the same parameter twice). Streamed with COPY.
COPY (
    SELECT p.person_id::text AS id, p.given_name, p.family_name, p.date_of_birth::text AS date_of_birth,
           coalesce(p.email_normalized, p.email) AS email, coalesce(p.phone_e164, p.phone) AS phone,
           h.street, h.locality, h.postcode, h.region,
           (p.created_at >= %s OR p.updated_at >= %s) AS is_changed
    FROM core.person p
    LEFT JOIN core.household h ON h.household_id = p.household_id
    WHERE p.merged_into IS NULL
    ORDER BY p.person_id  -- the model draws its random pairs by row position: the same people, the same scores
) TO STDOUT WITH (FORMAT csv, HEADER true)
