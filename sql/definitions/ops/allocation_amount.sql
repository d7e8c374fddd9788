-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Added by issue 19 (revision 0031 has the tables).

-- What each live allocation of a gift comes to in cents. An amount allocation is its amount; a percent
-- allocation is NPSP's own rule, percent x the opportunity's amount rounded half-even to the cent
-- (ops.round_half_even). When a gift's allocations are all by percent and the percents total exactly 100,
-- the cents that rounding leaves over (or takes too many) go one by one to the allocations that rounding cut
-- most, ties by Salesforce Id: the gift is then allocated to the cent. Otherwise nothing is moved, and
-- ops.gift_allocation shows what is left unallocated (NPSP's default GAU, when enabled, holds it as an
-- amount allocation of its own). Templates (by recurring donation or campaign) and deleted allocations are
-- not a gift's; an allocation whose opportunity left its gift (deleted in the CRM) counts no more.
CREATE OR REPLACE VIEW ops.allocation_amount AS
WITH live AS (
    SELECT a.allocation_id, a.source_record_id, a.fund_id, d.donation_id, a.opportunity_id, a.percent,
           a.crm_amount_minor, d.crm_amount_minor AS gift_minor, d.crm_currency AS currency,
           CASE WHEN a.percent IS NULL THEN a.crm_amount_minor
                ELSE ops.round_half_even(d.crm_amount_minor * a.percent / 100) END AS rounded_minor,
           CASE WHEN a.percent IS NULL THEN 0
                ELSE d.crm_amount_minor * a.percent / 100 - ops.round_half_even(d.crm_amount_minor * a.percent / 100)
           END AS cut_minor
    FROM core.donation_allocation a
    -- The gift the opportunity is on now (one per opportunity: core.donation's donation_crm_record).
    JOIN core.donation d ON d.crm_source_record_id = a.opportunity_id
    WHERE a.deleted_at IS NULL AND d.crm_amount_minor IS NOT NULL
), gift AS (
    SELECT donation_id, bool_and(percent IS NOT NULL) AND sum(percent) = 100 AS whole_by_percent,
           max(gift_minor) - sum(rounded_minor) AS residue_minor
    FROM live
    GROUP BY donation_id
), ranked AS (
    SELECT l.*, g.whole_by_percent, g.residue_minor,
           row_number() OVER (PARTITION BY l.donation_id
                              ORDER BY l.cut_minor * sign(g.residue_minor) DESC, l.source_record_id) AS cut_rank
    FROM live l
    JOIN gift g USING (donation_id)
)
SELECT allocation_id, source_record_id, fund_id, donation_id, opportunity_id,
       CASE WHEN percent IS NULL THEN 'amount' ELSE 'percent' END AS kind,
       percent, crm_amount_minor, currency,
       rounded_minor
       + CASE WHEN whole_by_percent AND cut_rank <= abs(residue_minor) THEN sign(residue_minor)::bigint ELSE 0 END
           AS amount_minor
FROM ranked;
COMMENT ON VIEW ops.allocation_amount IS
    'Each live allocation of a gift in cents: NPSP''s percent rule, remainder cents placed deterministically.';
REVOKE ALL ON ops.allocation_amount FROM PUBLIC;
GRANT SELECT ON ops.allocation_amount TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
