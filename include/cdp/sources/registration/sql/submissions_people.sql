-- Registration-form submissions (delivered by webhook only: the form has no polling API) → incoming_people
-- (then _resolve_people.sql). The submission's shape is ours, documented in cdp/webhooks/formats.py:
-- data = {id, submitted_at, first_name, last_name, email, phone, date_of_birth, country, consent: {…}}.
-- A missing or empty birth date stays NULL: the person counts as a minor until it is known.
CREATE TEMP TABLE incoming_people ON COMMIT DROP AS
SELECT DISTINCT ON (b.source_record_id)
       b.source_record_id,
       nullif(trim(b.payload ->> 'first_name'), '') AS given_name,
       nullif(trim(b.payload ->> 'last_name'), '') AS family_name,
       nullif(trim(b.payload ->> 'email'), '') AS email,
       nullif(trim(b.payload ->> 'phone'), '') AS phone,
       nullif(b.payload ->> 'date_of_birth', '')::date AS date_of_birth,
       upper(nullif(trim(b.payload ->> 'country'), '')) AS country,
       (b.payload ->> 'submitted_at')::timestamptz AS observed_at,
       true AS is_learner,
       false AS is_donor,
       NULL::uuid AS person_id,
       false AS is_new
FROM sync_batch b
WHERE b.reason IS NULL
ORDER BY b.source_record_id, b.seq DESC;
