-- NPSP General Accounting Units into core.fund. Read with queryAll: a GAU deleted in the CRM keeps its row
-- with deleted_at (its allocations keep naming it); one restored from the recycle bin clears it.
CREATE TEMP TABLE incoming_funds ON COMMIT DROP AS
SELECT DISTINCT ON (b.source_record_id)
       b.seq,
       b.source_record_id,
       trim(b.payload ->> 'Name') AS name,
       -- npsp__Active__c defaults to true (its metadata's defaultValue); an org without it read as active.
       coalesce((b.payload ->> 'npsp__Active__c')::boolean, true) AS active,
       CASE WHEN coalesce((b.payload ->> 'IsDeleted')::boolean, false)
            THEN coalesce((b.payload ->> 'SystemModstamp')::timestamptz, now()) END AS deleted_at
FROM sync_batch b
WHERE b.reason IS NULL
ORDER BY b.source_record_id, b.seq DESC;

INSERT INTO core.fund (source, source_record_id, name, active, deleted_at)
SELECT 'salesforce', f.source_record_id, f.name, f.active, f.deleted_at
FROM incoming_funds f
ON CONFLICT (source, source_record_id) DO UPDATE
SET name = excluded.name, active = excluded.active,
    deleted_at = CASE WHEN excluded.deleted_at IS NULL THEN NULL
                      ELSE coalesce(core.fund.deleted_at, excluded.deleted_at) END,
    updated_at = now()
WHERE (core.fund.name, core.fund.active, core.fund.deleted_at IS NULL)
      IS DISTINCT FROM (excluded.name, excluded.active, excluded.deleted_at IS NULL);
