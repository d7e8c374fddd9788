-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Added by issue 19 (revision 0031 has the tables).

-- The revenue each fund was allocated per month (UTC, the month the processor received the gift, as the
-- monthly reconciliation counts it), by currency: the base of cost per completion. Each figure is the sum of
-- ops.allocation_amount rows of that fund's gifts received that month (drill down there by fund_id and
-- month). Money no allocation names is not here: it is in ops.unallocated_gift.
CREATE OR REPLACE VIEW mart.fund_allocated_revenue_monthly AS
SELECT a.fund_id, f.name AS fund, f.source_record_id AS fund_source_record_id,
       date_trunc('month', d.received_at AT TIME ZONE 'UTC')::date AS month, a.currency,
       count(DISTINCT a.donation_id) AS gifts, sum(a.amount_minor)::bigint AS allocated_minor
FROM ops.allocation_amount a
JOIN core.donation d USING (donation_id)
JOIN core.fund f USING (fund_id)
GROUP BY a.fund_id, f.name, f.source_record_id, date_trunc('month', d.received_at AT TIME ZONE 'UTC')::date,
         a.currency;
COMMENT ON VIEW mart.fund_allocated_revenue_monthly IS
    'Revenue allocated to each fund per month (UTC) and currency, from ops.allocation_amount.';
REVOKE ALL ON mart.fund_allocated_revenue_monthly FROM PUBLIC;
GRANT SELECT ON mart.fund_allocated_revenue_monthly TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
