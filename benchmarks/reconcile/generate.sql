-- One month of gifts at benchmark scale, written straight into the finance contract tables.
-- Parameter: n (gifts). Planted: 1 in 200 missing from the warehouse, 1 in 333 missing from the ledger,
-- 1 in 500 keyed x10 in the ledger, 1 in 33 refunded in full, 1 in 1000 posted twice in the ledger.
CREATE TEMP TABLE bench_gift AS
SELECT g, 'FT-' || g AS ftid,
       (100 + (g::bigint * 7919) %% 20000) AS amount,
       (ARRAY['USD', 'USD', 'USD', 'EUR', 'GBP', 'CAD'])[1 + g %% 6] AS currency,
       timestamptz '2024-03-01 00:00:00+00' + ((g::bigint * 2654435761) %% 2678400) * interval '1 second' AS at,
       g %% 33 = 0 AS refunded
FROM generate_series(1, %(n)s) g;

INSERT INTO core.donation (financial_transaction_id, amount_minor, currency, received_at, status, refunded_minor,
                           fee_minor, source, source_record_id)
SELECT ftid, amount, currency, at, CASE WHEN refunded THEN 'refunded' ELSE 'succeeded' END,
       CASE WHEN refunded THEN amount ELSE 0 END, amount * 29 / 1000 + 30, 'stripe', 'ch_' || g
FROM bench_gift WHERE g %% 200 <> 7;

INSERT INTO core.balance_transaction (financial_transaction_id, type, source_object_id, amount_minor, fee_minor,
                                      net_minor, currency, status, created_at, source, source_record_id)
SELECT ftid, 'charge', 'ch_' || g, amount, amount * 29 / 1000 + 30, amount - (amount * 29 / 1000 + 30), currency,
       'available', at, 'stripe', 'txn_c' || g
FROM bench_gift
UNION ALL
SELECT ftid, 'refund', 're_' || g, -amount, 0, -amount, currency, 'available', at + interval '3 days', 'stripe',
       'txn_r' || g
FROM bench_gift WHERE refunded;

INSERT INTO core.ledger_posting (financial_transaction_id, posting_date, account, amount_minor, currency, reference,
                                 source, source_record_id)
SELECT ftid, at::date, '4000 Contributions', CASE WHEN g %% 500 = 3 THEN amount * 10 ELSE amount END, currency,
       'ch_' || g, 'ledger', 'ch_' || g
FROM bench_gift WHERE g %% 333 <> 5
UNION ALL
SELECT ftid, at::date, '4000 Contributions', amount, currency, 'dup_' || g, 'ledger', 'dup_' || g
FROM bench_gift WHERE g %% 1000 = 11
UNION ALL
SELECT ftid, at::date, '6100 Payment processing fees', -(amount * 29 / 1000 + 30), currency, 'txn_c' || g, 'ledger',
       'txn_c' || g
FROM bench_gift WHERE g %% 333 <> 5
UNION ALL
SELECT ftid, (at + interval '3 days')::date, '4000 Contributions', -amount, currency, 're_' || g, 'ledger', 're_' || g
FROM bench_gift WHERE refunded AND g %% 333 <> 5;

ANALYZE core.donation;
ANALYZE core.balance_transaction;
ANALYZE core.ledger_posting;
