-- Month over month: the latest run of each month up to the given one, its totals per class and currency.
WITH latest AS (
    SELECT DISTINCT ON (month) run_id, month, status
    FROM ops.reconciliation_run
    WHERE finished_at IS NOT NULL AND month <= %(month)s::date AND month > (%(month)s::date - interval '12 months')
    ORDER BY month, run_id DESC
)
SELECT to_char(l.month, 'YYYY-MM') AS month, l.status, t.class, t.currency, t.rows, t.warehouse_minor,
       t.stripe_minor, t.ledger_minor, t.crm_minor, t.difference_minor, t.unexplained
FROM latest l
JOIN ops.reconciliation_total t ON t.run_id = l.run_id
ORDER BY l.month DESC, t.class, t.currency;
