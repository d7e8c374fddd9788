-- Where the count diff finds a CRM opportunity in core: on the processor's donation it was matched to
-- (core.donation.crm_source_record_id), keyed like every other landed record by (source, source_record_id).
-- Read by the pipeline only (ops.count_window runs as the caller); no personal data.
CREATE OR REPLACE VIEW ops.crm_gift_landed WITH (security_invoker = true) AS
SELECT 'salesforce'::text AS source, d.crm_source_record_id AS source_record_id
FROM core.donation d
WHERE d.crm_source_record_id IS NOT NULL;

COMMENT ON VIEW ops.crm_gift_landed IS
    'CRM opportunities landed on their processor donation, keyed (source, source_record_id) for the count diff.';
GRANT SELECT ON ops.crm_gift_landed TO cdp_loader;
