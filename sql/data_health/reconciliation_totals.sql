SELECT class, trim(currency) AS currency, rows, warehouse_minor, stripe_minor, ledger_minor, difference_minor,
       unexplained
FROM ops.reconciliation_total
WHERE run_id = %(run_id)s
ORDER BY class, currency;
