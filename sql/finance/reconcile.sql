-- Reconcile one month: warehouse donations vs Stripe balance transactions vs the finance ledger, matched by
-- financial transaction id, exact to the cent, per currency. Parameters: run_id, month_start, month_end
-- (dates, end exclusive). Statements run in order in one transaction; results land in ops.reconciliation_*.

-- The month's gifts: any side that dates the gift in the month brings it in (a gift the warehouse lost is
-- still found through the processor or the ledger). Refunds and fees of those gifts count whenever posted.
CREATE TEMP TABLE recon_ids ON COMMIT DROP AS
SELECT d.financial_transaction_id AS ftid
FROM core.donation d
WHERE d.received_at >= (%(month_start)s::date)::timestamp AT TIME ZONE 'UTC'
  AND d.received_at < (%(month_end)s::date)::timestamp AT TIME ZONE 'UTC'
  AND d.status NOT IN ('failed', 'pending')
UNION
SELECT b.financial_transaction_id
FROM core.balance_transaction b
WHERE b.type = 'charge' AND b.financial_transaction_id IS NOT NULL
  AND b.created_at >= (%(month_start)s::date)::timestamp AT TIME ZONE 'UTC'
  AND b.created_at < (%(month_end)s::date)::timestamp AT TIME ZONE 'UTC'
UNION
SELECT l.financial_transaction_id
FROM core.ledger_posting l
JOIN ops.finance_ledger_account a ON a.account = l.account AND a.kind = 'contribution'
WHERE l.amount_minor > 0 AND l.posting_date >= %(month_start)s::date AND l.posting_date < %(month_end)s::date;

CREATE UNIQUE INDEX ON recon_ids (ftid);
ANALYZE recon_ids;

CREATE TEMP TABLE recon_gift ON COMMIT DROP AS
WITH w AS (
    SELECT d.financial_transaction_id AS ftid, min(d.currency) AS currency, count(DISTINCT d.currency) AS currencies,
           sum(d.amount_minor) AS gross, sum(d.fee_minor) AS fee, sum(d.refunded_minor) AS refunded,
           count(*) AS n, min(d.donation_id::text)::uuid AS donation_id, min(d.person_id::text)::uuid AS person_id,
           min(d.campaign) AS campaign
    FROM core.donation d JOIN recon_ids i ON i.ftid = d.financial_transaction_id
    WHERE d.status NOT IN ('failed', 'pending')
    GROUP BY d.financial_transaction_id
), s AS (
    SELECT b.financial_transaction_id AS ftid,
           min(b.currency) FILTER (WHERE b.type = 'charge') AS currency,
           count(DISTINCT b.currency) AS currencies,
           count(*) FILTER (WHERE b.type = 'charge') AS charges,
           sum(b.amount_minor) FILTER (WHERE b.type = 'charge') AS gross,
           coalesce(sum(b.fee_minor) FILTER (WHERE b.type = 'charge'), 0)
             - coalesce(sum(b.amount_minor) FILTER (WHERE b.type = 'stripe_fee'), 0) AS fee,
           -coalesce(sum(b.amount_minor) FILTER (WHERE b.type IN ('refund', 'payment_refund')), 0) AS refunded
    FROM core.balance_transaction b JOIN recon_ids i ON i.ftid = b.financial_transaction_id
    GROUP BY b.financial_transaction_id
), l_lines AS (
    SELECT l.financial_transaction_id AS ftid, l.amount_minor, l.currency, a.kind,
           count(*) OVER (PARTITION BY l.financial_transaction_id, a.kind, l.amount_minor) AS same_amount
    FROM core.ledger_posting l
    JOIN recon_ids i ON i.ftid = l.financial_transaction_id
    JOIN ops.finance_ledger_account a ON a.account = l.account
), l AS (
    SELECT ftid,
           min(currency) FILTER (WHERE kind = 'contribution' AND amount_minor > 0) AS currency,
           count(DISTINCT currency) AS currencies,
           count(*) FILTER (WHERE kind = 'contribution' AND amount_minor > 0) AS contributions,
           count(*) FILTER (WHERE kind = 'contribution' AND amount_minor > 0 AND same_amount > 1) AS repeated_lines,
           sum(amount_minor) FILTER (WHERE kind = 'contribution' AND amount_minor > 0) AS gross,
           -coalesce(sum(amount_minor) FILTER (WHERE kind = 'fee'), 0) AS fee,
           -coalesce(sum(amount_minor) FILTER (WHERE (kind = 'contribution' AND amount_minor < 0) OR kind = 'refund'), 0)
               AS refunded
    FROM l_lines
    GROUP BY ftid
), r AS (
    SELECT f.financial_transaction_id AS ftid, sum(f.amount_minor) AS refunded
    FROM core.refund f JOIN recon_ids i ON i.ftid = f.financial_transaction_id
    WHERE f.status = 'succeeded'
    GROUP BY f.financial_transaction_id
)
SELECT i.ftid,
       w.ftid IS NOT NULL AS in_w, s.gross IS NOT NULL AS in_s, l.gross IS NOT NULL AS in_l,
       coalesce(w.currency, s.currency, l.currency) AS currency,
       w.currency AS w_currency, s.currency AS s_currency, l.currency AS l_currency,
       w.gross AS w_gross, s.gross AS s_gross, l.gross AS l_gross,
       w.fee AS w_fee, s.fee AS s_fee, l.fee AS l_fee,
       w.refunded AS w_refunded, s.refunded AS s_refunded, l.refunded AS l_refunded, r.refunded AS r_refunded,
       coalesce(s.charges, 0) AS s_charges, coalesce(l.contributions, 0) AS l_contributions,
       coalesce(l.repeated_lines, 0) AS l_repeated,
       greatest(coalesce(w.currencies, 0), coalesce(s.currencies, 0), coalesce(l.currencies, 0)) AS max_currencies,
       w.donation_id, w.person_id, w.campaign
FROM recon_ids i
LEFT JOIN w ON w.ftid = i.ftid
LEFT JOIN s ON s.ftid = i.ftid
LEFT JOIN l ON l.ftid = i.ftid
LEFT JOIN r ON r.ftid = i.ftid;

-- One row per gift and class: the gift itself, then its fees and its refunds where there are any.
CREATE TEMP TABLE recon_class ON COMMIT DROP AS
SELECT g.ftid, g.currency, g.donation_id, g.person_id, g.campaign, c.class, c.w_minor, c.s_minor, c.l_minor,
       c.difference_minor, c.detail
FROM recon_gift g
CROSS JOIN LATERAL (
    SELECT CASE
               WHEN g.s_charges > 1 OR g.l_repeated > 0 THEN 'duplicate'
               WHEN g.max_currencies > 1
                    OR (g.w_currency IS NOT NULL AND g.s_currency IS NOT NULL AND g.w_currency <> g.s_currency)
                    OR (g.w_currency IS NOT NULL AND g.l_currency IS NOT NULL AND g.w_currency <> g.l_currency)
                    OR (g.s_currency IS NOT NULL AND g.l_currency IS NOT NULL AND g.s_currency <> g.l_currency)
                   THEN 'currency_mismatch'
               WHEN NOT g.in_w AND g.in_l THEN 'in_ledger_not_warehouse'
               WHEN NOT g.in_w AND NOT g.in_l THEN 'in_stripe_only'
               WHEN g.in_w AND NOT g.in_l THEN 'in_warehouse_not_ledger'
               WHEN g.w_gross <> g.l_gross OR (g.in_s AND g.s_gross <> g.w_gross) THEN 'amount_mismatch'
               WHEN NOT g.in_s THEN 'not_in_stripe'
               ELSE 'matched'
           END AS class,
           g.w_gross AS w_minor, g.s_gross AS s_minor, g.l_gross AS l_minor,
           CASE
               WHEN g.in_w AND g.in_l THEN g.w_gross - g.l_gross
               WHEN g.in_w THEN g.w_gross
               WHEN g.in_l THEN -g.l_gross
               ELSE -g.s_gross
           END AS difference_minor,
           jsonb_strip_nulls(jsonb_build_object(
               'currencies', jsonb_build_object('warehouse', g.w_currency, 'stripe', g.s_currency, 'ledger', g.l_currency),
               'stripe_charges', g.s_charges, 'ledger_contribution_lines', g.l_contributions)) AS detail
    UNION ALL
    SELECT CASE WHEN coalesce(g.s_fee, 0) = coalesce(g.l_fee, 0)
                     AND (g.w_fee IS NULL OR g.w_fee = coalesce(g.s_fee, g.l_fee)) THEN 'fee_accounted'
                ELSE 'fee_mismatch' END,
           g.w_fee, g.s_fee, g.l_fee, coalesce(g.s_fee, g.w_fee, 0) - coalesce(g.l_fee, 0), '{}'::jsonb
    WHERE g.in_s AND g.in_l AND (coalesce(g.s_fee, 0) <> 0 OR coalesce(g.l_fee, 0) <> 0)
    UNION ALL
    SELECT CASE WHEN (NOT g.in_w OR g.w_refunded = x.ref) AND (NOT g.in_s OR g.s_refunded = x.ref)
                     AND (NOT g.in_l OR g.l_refunded = x.ref) AND (g.r_refunded IS NULL OR g.r_refunded = x.ref)
                THEN 'refund_accounted' ELSE 'refund_mismatch' END,
           g.w_refunded, g.s_refunded, g.l_refunded,
           x.ref - coalesce(CASE WHEN g.in_l THEN g.l_refunded END, g.r_refunded, x.ref),
           jsonb_strip_nulls(jsonb_build_object('core_refund_minor', g.r_refunded))
    FROM (SELECT CASE WHEN g.in_w THEN g.w_refunded WHEN g.in_s THEN g.s_refunded ELSE g.l_refunded END AS ref) x
    WHERE coalesce(g.w_refunded, 0) <> 0 OR coalesce(g.s_refunded, 0) <> 0 OR coalesce(g.l_refunded, 0) <> 0
       OR coalesce(g.r_refunded, 0) <> 0
) c;

-- Payouts are account-level, not per gift: the month's Stripe payouts against the ledger's, per currency.
INSERT INTO recon_class (ftid, currency, class, w_minor, s_minor, l_minor, difference_minor, detail)
SELECT NULL, p.currency,
       CASE WHEN coalesce(p.stripe, 0) = coalesce(p.ledger, 0) THEN 'payout_accounted' ELSE 'payout_mismatch' END,
       NULL, p.stripe, p.ledger, coalesce(p.stripe, 0) - coalesce(p.ledger, 0), '{}'::jsonb
FROM (
    SELECT coalesce(s.currency, l.currency) AS currency, s.total AS stripe, l.total AS ledger
    FROM (SELECT b.currency, -sum(b.amount_minor) AS total FROM core.balance_transaction b
          WHERE b.type = 'payout' AND b.created_at >= (%(month_start)s::date)::timestamp AT TIME ZONE 'UTC'
            AND b.created_at < (%(month_end)s::date)::timestamp AT TIME ZONE 'UTC'
          GROUP BY b.currency) s
    FULL JOIN (SELECT l.currency, sum(l.amount_minor) AS total FROM core.ledger_posting l
               JOIN ops.finance_ledger_account a ON a.account = l.account AND a.kind = 'payout'
               WHERE l.posting_date >= %(month_start)s::date AND l.posting_date < %(month_end)s::date
               GROUP BY l.currency) l ON l.currency = s.currency
) p;

INSERT INTO ops.reconciliation_result (run_id, class, financial_transaction_id, currency, warehouse_minor,
                                       stripe_minor, ledger_minor, difference_minor, detail, donation_id,
                                       person_id, campaign, explained, explanation)
SELECT %(run_id)s, c.class, c.ftid, c.currency, c.w_minor, c.s_minor, c.l_minor, c.difference_minor, c.detail,
       c.donation_id, c.person_id, c.campaign, e.note IS NOT NULL, e.note
FROM recon_class c
LEFT JOIN ops.reconciliation_explanation e ON e.financial_transaction_id = c.ftid AND e.class = c.class
WHERE c.class NOT IN ('matched', 'fee_accounted', 'refund_accounted', 'payout_accounted');

INSERT INTO ops.reconciliation_total (run_id, class, currency, rows, warehouse_minor, stripe_minor, ledger_minor,
                                      difference_minor, unexplained)
SELECT %(run_id)s, c.class, coalesce(c.currency, '---'), count(*), coalesce(sum(c.w_minor), 0),
       coalesce(sum(c.s_minor), 0), coalesce(sum(c.l_minor), 0), coalesce(sum(c.difference_minor), 0),
       count(*) FILTER (WHERE c.class NOT IN ('matched', 'fee_accounted', 'refund_accounted', 'payout_accounted')
                          AND NOT EXISTS (SELECT 1 FROM ops.reconciliation_explanation e
                                          WHERE e.financial_transaction_id = c.ftid AND e.class = c.class))
FROM recon_class c
GROUP BY c.class, coalesce(c.currency, '---');

UPDATE ops.reconciliation_run r
SET finished_at = clock_timestamp(),
    gifts = (SELECT count(*) FROM recon_gift),
    unexplained_count = t.unexplained,
    status = CASE WHEN t.unexplained > 0 THEN 'failed' ELSE 'passed' END
FROM (SELECT coalesce(sum(unexplained), 0) AS unexplained FROM ops.reconciliation_total
      WHERE run_id = %(run_id)s) t
WHERE r.run_id = %(run_id)s;
