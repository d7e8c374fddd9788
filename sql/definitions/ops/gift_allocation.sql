-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Added by issue 19 (revision 0031 has the tables).

-- Every gift the CRM has (an Opportunity on the processor's donation), its amount there and what its live
-- allocations come to (ops.allocation_amount): 'allocated' to the cent, 'partly_allocated', 'over_allocated',
-- or 'unallocated' (no allocation at all: the org has no default GAU, or it was not applied). Nothing is
-- guessed: an unallocated amount stays unallocated here until the CRM allocates it.
CREATE OR REPLACE VIEW ops.gift_allocation AS
SELECT d.donation_id, d.financial_transaction_id, d.crm_source_record_id AS opportunity_id,
       d.crm_amount_minor AS gift_minor, d.crm_currency AS currency, d.crm_stage, d.crm_close_date,
       coalesce(a.allocations, 0) AS allocations,
       coalesce(a.allocated_minor, 0) AS allocated_minor,
       d.crm_amount_minor - coalesce(a.allocated_minor, 0) AS unallocated_minor,
       CASE WHEN a.allocations IS NULL THEN 'unallocated'
            WHEN a.allocated_minor = d.crm_amount_minor THEN 'allocated'
            WHEN a.allocated_minor < d.crm_amount_minor THEN 'partly_allocated'
            ELSE 'over_allocated' END AS status
FROM core.donation d
LEFT JOIN (SELECT donation_id, count(*) AS allocations, sum(amount_minor)::bigint AS allocated_minor
           FROM ops.allocation_amount GROUP BY donation_id) a USING (donation_id)
WHERE d.crm_source_record_id IS NOT NULL AND d.crm_amount_minor IS NOT NULL;
COMMENT ON VIEW ops.gift_allocation IS
    'Each CRM gift against its allocations, to the cent: allocated, partly_allocated, over_allocated, unallocated.';
REVOKE ALL ON ops.gift_allocation FROM PUBLIC;
GRANT SELECT ON ops.gift_allocation TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;

-- The gifts whose money is not (all) in a fund: what finance or the CRM admin must allocate.
CREATE OR REPLACE VIEW ops.unallocated_gift AS
SELECT donation_id, financial_transaction_id, opportunity_id, gift_minor, currency, crm_stage, crm_close_date,
       allocations, allocated_minor, unallocated_minor, status
FROM ops.gift_allocation
WHERE status <> 'allocated';
COMMENT ON VIEW ops.unallocated_gift IS
    'CRM gifts not allocated to the cent (no allocation, partly, or over): reported, never guessed.';
REVOKE ALL ON ops.unallocated_gift FROM PUBLIC;
GRANT SELECT ON ops.unallocated_gift TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
