-- NPSP Allocations into core.donation_allocation: a gift's allocation (npsp__Opportunity__c), or a template
-- NPSP copies onto the new gifts of a recurring donation or campaign. Stored as the CRM says (an amount, or a
-- percent of the gift); what it comes to in cents, and whether a gift's allocations add up to it, are the
-- views ops.allocation_amount and ops.gift_allocation. Read with queryAll: a deleted allocation keeps its row
-- with deleted_at. An allocation whose fund or gift is not here yet waits in the quarantine and is re-tried.
UPDATE sync_batch b
SET reason = 'unknown fund: the general accounting unit in npsp__General_Accounting_Unit__c is not in the warehouse yet',
    reason_value = b.payload ->> 'npsp__General_Accounting_Unit__c'
WHERE b.reason IS NULL
  AND NOT EXISTS (SELECT 1 FROM core.fund f
                  WHERE f.source = 'salesforce' AND f.source_record_id = b.payload ->> 'npsp__General_Accounting_Unit__c');

UPDATE sync_batch b
SET reason = 'unknown opportunity: the salesforce opportunity in npsp__Opportunity__c has no gift in the warehouse yet',
    reason_value = b.payload ->> 'npsp__Opportunity__c'
WHERE b.reason IS NULL
  AND nullif(b.payload ->> 'npsp__Opportunity__c', '') IS NOT NULL
  AND NOT coalesce((b.payload ->> 'IsDeleted')::boolean, false)
  AND NOT EXISTS (SELECT 1 FROM core.donation d WHERE d.crm_source_record_id = b.payload ->> 'npsp__Opportunity__c');

CREATE TEMP TABLE incoming_allocations ON COMMIT DROP AS
SELECT DISTINCT ON (b.source_record_id)
       b.seq,
       b.source_record_id,
       f.fund_id,
       nullif(b.payload ->> 'npsp__Opportunity__c', '') AS opportunity_id,
       nullif(b.payload ->> 'npsp__Recurring_Donation__c', '') AS recurring_donation_id,
       nullif(b.payload ->> 'npsp__Campaign__c', '') AS campaign_id,
       round((b.payload ->> 'npsp__Amount__c')::numeric * 100)::bigint AS crm_amount_minor,
       (b.payload ->> 'npsp__Percent__c')::numeric AS percent,
       upper(coalesce(b.payload ->> 'CurrencyIsoCode', nullif(%(org_currency)s::text, ''))) AS currency,
       CASE WHEN coalesce((b.payload ->> 'IsDeleted')::boolean, false)
            THEN coalesce((b.payload ->> 'SystemModstamp')::timestamptz, now()) END AS deleted_at
FROM sync_batch b
JOIN core.fund f ON f.source = 'salesforce' AND f.source_record_id = b.payload ->> 'npsp__General_Accounting_Unit__c'
WHERE b.reason IS NULL
ORDER BY b.source_record_id, b.seq DESC;

INSERT INTO core.donation_allocation (fund_id, opportunity_id, donation_id, recurring_donation_id, campaign_id,
                                      crm_amount_minor, percent, currency, source, source_record_id, deleted_at)
SELECT a.fund_id, a.opportunity_id, d.donation_id, a.recurring_donation_id, a.campaign_id, a.crm_amount_minor,
       a.percent, a.currency, 'salesforce', a.source_record_id, a.deleted_at
FROM incoming_allocations a
LEFT JOIN core.donation d ON d.crm_source_record_id = a.opportunity_id
ON CONFLICT (source, source_record_id) DO UPDATE
SET fund_id = excluded.fund_id, opportunity_id = excluded.opportunity_id,
    -- a deleted allocation of a gift that left keeps the gift it was on
    donation_id = coalesce(excluded.donation_id, core.donation_allocation.donation_id),
    recurring_donation_id = excluded.recurring_donation_id, campaign_id = excluded.campaign_id,
    crm_amount_minor = excluded.crm_amount_minor, percent = excluded.percent, currency = excluded.currency,
    deleted_at = CASE WHEN excluded.deleted_at IS NULL THEN NULL
                      ELSE coalesce(core.donation_allocation.deleted_at, excluded.deleted_at) END,
    updated_at = now()
WHERE (core.donation_allocation.fund_id, core.donation_allocation.opportunity_id,
       core.donation_allocation.recurring_donation_id, core.donation_allocation.campaign_id,
       core.donation_allocation.crm_amount_minor, core.donation_allocation.percent,
       core.donation_allocation.currency, core.donation_allocation.deleted_at IS NULL)
      IS DISTINCT FROM
      (excluded.fund_id, excluded.opportunity_id, excluded.recurring_donation_id, excluded.campaign_id,
       excluded.crm_amount_minor, excluded.percent, excluded.currency::char(3), excluded.deleted_at IS NULL);
