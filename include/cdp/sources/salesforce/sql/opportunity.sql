-- Salesforce Opportunities (the CRM's view of a gift) into the crm_* columns of the processor's donation,
-- matched by the financial transaction id. A gift the processor has not reported yet is not invented from
-- the CRM side: it waits in the quarantine with its reason and is re-tried by every later sync. An
-- Opportunity deleted in the CRM (read with queryAll: IsDeleted) leaves the gift it was on, so the monthly
-- reconciliation reports that gift as not in the CRM.

-- The latest version of each opportunity in the batch: one gift per opportunity.
CREATE TEMP TABLE incoming_gifts ON COMMIT DROP AS
SELECT DISTINCT ON (b.source_record_id)
       b.seq,
       b.source_record_id,
       trim(b.payload ->> 'Financial_Transaction_Id__c') AS financial_transaction_id,
       ((b.payload ->> 'Amount')::numeric * 100)::bigint AS amount_minor,
       -- A single-currency org's records have no CurrencyIsoCode: its amounts are in the org's currency.
       upper(coalesce(b.payload ->> 'CurrencyIsoCode', nullif(%(org_currency)s::text, ''))) AS currency,
       b.payload ->> 'StageName' AS stage,
       (b.payload ->> 'CloseDate')::date AS close_date,
       nullif(b.payload ->> 'AccountId', '') AS account_id,
       coalesce((b.payload ->> 'IsDeleted')::boolean, false) AS is_deleted
FROM sync_batch b
WHERE b.reason IS NULL
ORDER BY b.source_record_id, b.seq DESC;

UPDATE sync_batch b
SET reason = 'no processor donation yet: its financial transaction is not in core.donation (its Stripe charge'
             || ' has not synced, or is quarantined)',
    reason_value = g.financial_transaction_id
FROM incoming_gifts g
WHERE b.seq = g.seq
  AND NOT g.is_deleted
  AND NOT EXISTS (SELECT 1 FROM core.donation d WHERE d.financial_transaction_id = g.financial_transaction_id);

-- One gift is one opportunity: a second opportunity claiming it is held for a person to decide.
UPDATE sync_batch b
SET reason = 'financial transaction already the gift of another opportunity',
    reason_value = g.financial_transaction_id || ' ' || d.crm_source_record_id
FROM incoming_gifts g
JOIN core.donation d ON d.financial_transaction_id = g.financial_transaction_id
WHERE b.seq = g.seq
  AND b.reason IS NULL
  AND NOT g.is_deleted
  AND d.crm_source_record_id IS NOT NULL
  AND d.crm_source_record_id <> g.source_record_id;

UPDATE sync_batch b
SET reason = 'financial transaction also claimed by another opportunity in the same batch',
    reason_value = g.financial_transaction_id || ' ' || other.source_record_id
FROM incoming_gifts g
JOIN incoming_gifts other
  ON other.financial_transaction_id = g.financial_transaction_id AND other.source_record_id < g.source_record_id
     AND NOT other.is_deleted
WHERE b.seq = g.seq
  AND b.reason IS NULL
  AND NOT g.is_deleted;

-- A deleted opportunity's soft credits (its contact roles and partial soft credits, which Salesforce deletes
-- with it) leave the gift too: nobody is credited any more with a gift the CRM no longer has.
DELETE FROM core.donation_soft_credit s
USING core.donation d, incoming_gifts g
JOIN sync_batch b ON b.seq = g.seq AND b.reason IS NULL
WHERE g.is_deleted
  AND d.crm_source_record_id = g.source_record_id
  AND s.donation_id = d.donation_id
  AND s.source IN ('salesforce', 'salesforce.contact_role');

-- An opportunity moved to another gift in the CRM, or deleted there, leaves the gift it was on.
UPDATE core.donation d
SET crm_source_record_id = NULL, crm_amount_minor = NULL, crm_currency = NULL, crm_stage = NULL,
    crm_close_date = NULL, crm_account_id = NULL, household_id = NULL, organization_id = NULL, updated_at = now()
FROM incoming_gifts g
JOIN sync_batch b ON b.seq = g.seq AND b.reason IS NULL
WHERE d.crm_source_record_id = g.source_record_id
  AND (d.financial_transaction_id <> g.financial_transaction_id OR g.is_deleted);

-- The gift's household or organisation comes from its account when that is already here (else the
-- Account stream sets it when the account arrives: account_gifts.sql).
UPDATE core.donation d
SET crm_source_record_id = g.source_record_id,
    crm_amount_minor = g.amount_minor,
    crm_currency = g.currency,
    crm_stage = g.stage,
    crm_close_date = g.close_date,
    crm_account_id = g.account_id,
    household_id = g.household_id,
    organization_id = g.organization_id,
    updated_at = now()
FROM (SELECT g.*, h.household_id, o.organization_id
      FROM incoming_gifts g
      JOIN sync_batch b ON b.seq = g.seq AND b.reason IS NULL AND NOT g.is_deleted
      LEFT JOIN core.household h ON h.source = 'salesforce' AND h.source_record_id = g.account_id
      LEFT JOIN core.organization o ON o.source = 'salesforce' AND o.source_record_id = g.account_id) g
WHERE d.financial_transaction_id = g.financial_transaction_id
  AND (d.crm_source_record_id, d.crm_amount_minor, d.crm_currency, d.crm_stage, d.crm_close_date,
       d.crm_account_id, d.household_id, d.organization_id)
      IS DISTINCT FROM
      (g.source_record_id, g.amount_minor, g.currency::char(3), g.stage, g.close_date, g.account_id,
       g.household_id, g.organization_id);

-- What the CRM said of a deleted Opportunity is kept (core.crm_record_removal, audited), with the donor of
-- the gift it was on; one restored from the recycle bin arrives as an ordinary record and closes its removal.
INSERT INTO core.crm_record_removal (source, sobject, source_record_id, kind, person_id, removed_at, run_id)
SELECT 'salesforce', 'Opportunity', g.source_record_id, 'deleted',
       (SELECT d.person_id FROM core.donation d WHERE d.financial_transaction_id = g.financial_transaction_id),
       coalesce((b.payload ->> 'SystemModstamp')::timestamptz, now()), %(run_id)s
FROM incoming_gifts g
JOIN sync_batch b ON b.seq = g.seq AND b.reason IS NULL
WHERE g.is_deleted
ON CONFLICT (source, sobject, source_record_id) DO UPDATE
SET removed_at = excluded.removed_at, run_id = excluded.run_id, restored_at = NULL, updated_at = now()
WHERE core.crm_record_removal.restored_at IS NOT NULL;

UPDATE core.crm_record_removal r
SET restored_at = now(), run_id = %(run_id)s, updated_at = now()
FROM incoming_gifts g
JOIN sync_batch b ON b.seq = g.seq AND b.reason IS NULL
WHERE NOT g.is_deleted
  AND r.source = 'salesforce' AND r.sobject = 'Opportunity' AND r.source_record_id = g.source_record_id
  AND r.restored_at IS NULL;
