-- Reconcile one month: warehouse donations vs Stripe balance transactions vs the finance ledger, matched by
-- financial transaction id, exact to the cent, per currency. Parameters: run_id, month_start, month_end
-- (dates, end exclusive). Statements run in order in one transaction; results land in ops.reconciliation_*.

-- A month of gifts is grouped in memory, not in spill files.
SET LOCAL work_mem = '1GB';

-- Every money movement from all three sides dated from a fortnight before the month onwards, in one stream,
-- grouped once per gift (financial transaction id). A gift belongs to the month of its earliest gift row on
-- any side (warehouse donation, Stripe charge, ledger contribution), so each gift is reconciled in exactly
-- one month, and a gift the warehouse lost is still found through the processor or the ledger. Its fees and
-- refunds count whenever they were posted. (Sides more than the fortnight apart fall into different months
-- and show as differences in both: rare, and worth a look.)
-- gross: the gift itself; fee: processing fees (positive); refunded: refunds (positive); crm: the gift's
-- closed-won Salesforce Opportunity amount and currency, as the sync put them beside the donation; in_crm:
-- the donation has an Opportunity at all (any stage).
CREATE TEMP TABLE recon_gift ON COMMIT DROP AS
WITH bounds AS (
    SELECT (%(month_start)s::date)::timestamp AT TIME ZONE 'UTC' AS month_start,
           (%(month_end)s::date)::timestamp AT TIME ZONE 'UTC' AS month_end,
           ((%(month_start)s::date - 14)::timestamp AT TIME ZONE 'UTC') AS scan_from
), movement AS (
    SELECT d.financial_transaction_id AS ftid, 'w'::"char" AS side, d.received_at AS at, d.currency,
           d.amount_minor AS gross, d.fee_minor AS fee, d.refunded_minor AS refunded,
           CASE WHEN d.crm_stage = 'Closed Won' THEN d.crm_amount_minor END AS crm,
           CASE WHEN d.crm_stage = 'Closed Won' THEN d.crm_currency END AS crm_currency,
           NULL::bigint AS disputed, NULL::bigint AS dispute_fee, d.crm_source_record_id IS NOT NULL AS in_crm
    FROM core.donation d, bounds
    WHERE d.status NOT IN ('failed', 'pending') AND d.received_at >= bounds.scan_from
    UNION ALL
    SELECT coalesce(b.financial_transaction_id, p.financial_transaction_id), 's', b.created_at, b.currency,
           CASE WHEN b.type = 'charge' THEN b.amount_minor END,
           CASE WHEN b.type = 'charge' THEN b.fee_minor WHEN b.type = 'stripe_fee' THEN -b.amount_minor END,
           -- a refund's money out, and back (positive) when the refund failed (type refund_failure)
           CASE WHEN b.type IN ('refund', 'payment_refund', 'refund_failure') THEN -b.amount_minor END, NULL, NULL,
           -- a dispute's money withdrawn (and reinstated, with the opposite sign) and its fee: a movement of a
           -- dispute in core.dispute (traced to its gift through the dispute's charge), or one Stripe reports
           -- in a dispute's category
           CASE WHEN p.source_record_id IS NOT NULL OR b.reporting_category IN ('dispute', 'dispute_reversal')
                THEN -b.amount_minor END,
           CASE WHEN p.source_record_id IS NOT NULL OR b.reporting_category IN ('dispute', 'dispute_reversal')
                THEN b.fee_minor END, NULL
    FROM core.balance_transaction b
    CROSS JOIN bounds
    LEFT JOIN core.dispute p ON p.source = b.source AND p.source_record_id = b.source_object_id
    WHERE coalesce(b.financial_transaction_id, p.financial_transaction_id) IS NOT NULL
      AND b.created_at >= bounds.scan_from
    UNION ALL
    SELECT l.financial_transaction_id, 'l', l.posting_date::timestamp AT TIME ZONE 'UTC', l.currency,
           CASE WHEN a.kind = 'contribution' AND l.amount_minor > 0 THEN l.amount_minor END,
           CASE WHEN a.kind = 'fee' THEN -l.amount_minor END,
           CASE WHEN (a.kind = 'contribution' AND l.amount_minor < 0) OR a.kind = 'refund' THEN -l.amount_minor END,
           NULL, NULL, NULL, NULL, NULL
    FROM core.ledger_posting l
    JOIN ops.finance_ledger_account a ON a.account = l.account
    WHERE l.posting_date >= %(month_start)s::date - 14
    UNION ALL
    -- Refunds as the warehouse holds them (core.refund), a fourth view of the same money.
    SELECT f.financial_transaction_id, 'r', f.created_at, f.currency, NULL, NULL, f.amount_minor, NULL, NULL,
           NULL, NULL, NULL
    FROM core.refund f, bounds
    WHERE f.status = 'succeeded' AND f.financial_transaction_id IS NOT NULL AND f.created_at >= bounds.scan_from
), per_gift AS (
    SELECT ftid,
           count(*) FILTER (WHERE side = 'w') > 0 AS in_w,
           count(gross) FILTER (WHERE side = 's') > 0 AS in_s,
           count(gross) FILTER (WHERE side = 'l') > 0 AS in_l,
           min(currency) FILTER (WHERE side = 'w') AS w_currency,
           min(currency) FILTER (WHERE side = 's' AND gross IS NOT NULL) AS s_currency,
           min(currency) FILTER (WHERE side = 'l' AND gross IS NOT NULL) AS l_currency,
           min(currency) <> max(currency) AS mixed_currency,
           sum(gross) FILTER (WHERE side = 'w') AS w_gross,
           sum(gross) FILTER (WHERE side = 's') AS s_gross,
           sum(gross) FILTER (WHERE side = 'l') AS l_gross,
           sum(crm) FILTER (WHERE side = 'w') AS crm_gross,
           min(crm_currency) FILTER (WHERE side = 'w') AS crm_currency,
           coalesce(bool_or(in_crm) FILTER (WHERE side = 'w'), false) AS in_crm,
           sum(fee) FILTER (WHERE side = 'w') AS w_fee,
           coalesce(sum(fee) FILTER (WHERE side = 's'), 0) AS s_fee,
           coalesce(sum(fee) FILTER (WHERE side = 'l'), 0) AS l_fee,
           coalesce(sum(refunded) FILTER (WHERE side = 'w'), 0) AS w_refunded,
           coalesce(sum(refunded) FILTER (WHERE side = 's'), 0) AS s_refunded,
           coalesce(sum(refunded) FILTER (WHERE side = 'l'), 0) AS l_refunded,
           sum(refunded) FILTER (WHERE side = 'r') AS r_refunded,
           coalesce(sum(disputed) FILTER (WHERE side = 's'), 0) AS s_disputed,
           coalesce(sum(dispute_fee) FILTER (WHERE side = 's'), 0) AS s_dispute_fee,
           count(disputed) FILTER (WHERE side = 's') AS s_dispute_movements,
           count(gross) FILTER (WHERE side = 's') AS s_charges,
           count(gross) FILTER (WHERE side = 'l') AS l_contributions,
           -- the same amount posted more than once for one gift (a split posting has differing lines)
           min(gross) FILTER (WHERE side = 'l') = max(gross) FILTER (WHERE side = 'l') AS l_same_amounts
    FROM movement
    GROUP BY ftid
    HAVING min(at) FILTER (WHERE gross IS NOT NULL OR side = 'w') >= (SELECT month_start FROM bounds)
       AND min(at) FILTER (WHERE gross IS NOT NULL OR side = 'w') < (SELECT month_end FROM bounds)
)
SELECT g.*,
       coalesce(g.w_currency, g.s_currency, g.l_currency) AS currency,
       CASE
           WHEN g.s_charges > 1 OR (g.l_contributions > 1 AND g.l_same_amounts) THEN 'duplicate'
           WHEN g.mixed_currency THEN 'currency_mismatch'
           WHEN NOT g.in_w AND g.in_l THEN 'in_ledger_not_warehouse'
           WHEN NOT g.in_w AND NOT g.in_l THEN 'in_stripe_only'
           WHEN g.in_w AND NOT g.in_l THEN 'in_warehouse_not_ledger'
           WHEN g.w_gross <> g.l_gross OR (g.in_s AND g.s_gross <> g.w_gross) THEN 'amount_mismatch'
           WHEN NOT g.in_s THEN 'not_in_stripe'
           ELSE 'matched'
       END AS class,
       CASE
           WHEN g.in_w AND g.in_l THEN g.w_gross - g.l_gross
           WHEN g.in_w THEN g.w_gross
           WHEN g.in_l THEN -g.l_gross
           ELSE -g.s_gross
       END AS difference,
       CASE
           WHEN NOT (g.in_s AND g.in_l) OR (g.s_fee = 0 AND g.l_fee = 0) THEN NULL
           WHEN g.s_fee = g.l_fee AND (g.w_fee IS NULL OR g.w_fee = g.s_fee) THEN 'fee_accounted'
           ELSE 'fee_mismatch'
       END AS fee_class,
       CASE
           WHEN g.w_refunded = 0 AND g.s_refunded = 0 AND g.l_refunded = 0 AND coalesce(g.r_refunded, 0) = 0 THEN NULL
           WHEN (NOT g.in_w OR g.w_refunded = x.ref) AND (NOT g.in_s OR g.s_refunded = x.ref)
                AND (NOT g.in_l OR g.l_refunded = x.ref) AND (g.r_refunded IS NULL OR g.r_refunded = x.ref)
               THEN 'refund_accounted'
           ELSE 'refund_mismatch'
       END AS refund_class,
       CASE
           WHEN g.in_w AND g.crm_gross IS NOT NULL
                AND (g.crm_gross <> g.w_gross OR g.crm_currency <> g.w_currency) THEN 'crm_amount_mismatch'
           -- A gift with no Opportunity at all, once the CRM has been read past the month's end (an org that
           -- does not sync its CRM, or has not yet, is not compared).
           WHEN g.in_w AND NOT g.in_crm AND EXISTS (
                    SELECT 1 FROM ops.sync_run r
                    WHERE r.source = 'salesforce' AND r.stream = 'Opportunity'
                      AND r.window_end >= (%(month_end)s::date)::timestamp AT TIME ZONE 'UTC') THEN 'not_in_crm'
       END AS crm_class,
       x.ref AS ref_refunded
FROM per_gift g
CROSS JOIN LATERAL (SELECT CASE WHEN g.in_w THEN g.w_refunded WHEN g.in_s THEN g.s_refunded
                                ELSE g.l_refunded END AS ref) x;

-- The differing rows, one per gift and class, each traced to its donation and donor where there is one.
CREATE TEMP TABLE recon_diff ON COMMIT DROP AS
SELECT g.ftid, g.currency, g.class, g.w_gross AS w_minor, g.s_gross AS s_minor, g.l_gross AS l_minor,
       g.crm_gross AS crm_minor, g.difference AS difference_minor,
       jsonb_strip_nulls(jsonb_build_object(
           'currencies', jsonb_build_object('warehouse', g.w_currency, 'stripe', g.s_currency, 'ledger', g.l_currency,
                                            'crm', g.crm_currency),
           'stripe_charges', g.s_charges, 'ledger_contribution_lines', g.l_contributions)) AS detail
FROM recon_gift g WHERE g.class <> 'matched'
UNION ALL
SELECT g.ftid, g.currency, g.fee_class, g.w_fee, g.s_fee, g.l_fee, NULL, coalesce(g.w_fee, g.s_fee) - g.l_fee,
       '{}'::jsonb
FROM recon_gift g WHERE g.fee_class = 'fee_mismatch'
UNION ALL
SELECT g.ftid, g.currency, g.refund_class, g.w_refunded, g.s_refunded, g.l_refunded, NULL,
       g.ref_refunded - coalesce(CASE WHEN g.in_l THEN g.l_refunded END, g.r_refunded, g.ref_refunded),
       jsonb_strip_nulls(jsonb_build_object('core_refund_minor', g.r_refunded))
FROM recon_gift g WHERE g.refund_class = 'refund_mismatch'
UNION ALL
-- A disputed gift: Stripe withdrew its money (net of any reinstatement) and charged a dispute fee; finance
-- books it (or explains it) whatever the ledger says of the gift itself. A dispute won in full nets to 0 (its
-- fee stays). The detail names the disputes' status as core.dispute holds it (open, won, lost).
SELECT g.ftid, g.currency, 'dispute', g.w_gross, g.s_gross, g.l_gross, NULL, -g.s_disputed,
       jsonb_strip_nulls(jsonb_build_object(
           'withdrawn_minor', g.s_disputed, 'dispute_fee_minor', g.s_dispute_fee,
           'dispute_movements', g.s_dispute_movements,
           'dispute_status', (SELECT string_agg(DISTINCT p.status, ', ' ORDER BY p.status) FROM core.dispute p
                              WHERE p.financial_transaction_id = g.ftid)))
FROM recon_gift g WHERE g.s_disputed <> 0 OR g.s_dispute_fee <> 0
UNION ALL
-- The CRM's closed-won amount against the donation, to the cent (difference: warehouse minus CRM).
SELECT g.ftid, g.w_currency, g.crm_class, g.w_gross, g.s_gross, g.l_gross, g.crm_gross, g.w_gross - g.crm_gross,
       jsonb_build_object('currencies', jsonb_build_object('warehouse', g.w_currency, 'crm', g.crm_currency))
FROM recon_gift g WHERE g.crm_class = 'crm_amount_mismatch'
UNION ALL
-- A gift the CRM never got (the silent loss on the way to the CRM): the donor's record there lacks it. When
-- its Opportunity waits in the quarantine (a malformed record), the detail names the quarantined row.
SELECT g.ftid, g.w_currency, g.crm_class, g.w_gross, g.s_gross, g.l_gross, NULL, g.w_gross,
       jsonb_strip_nulls(jsonb_build_object('quarantine_id', (
           SELECT max(q.quarantine_id) FROM ops.reconciliation_quarantine q
           WHERE q.source = 'salesforce' AND q.stream = 'Opportunity' AND q.resolved_at IS NULL
             AND q.financial_transaction_id = g.ftid)))
FROM recon_gift g WHERE g.crm_class = 'not_in_crm';

-- Stripe money whose charge never reached the warehouse waits in the quarantine with its balance transaction
-- (reason "unknown charge"): named here, with its amount, so the report says where that money is.
INSERT INTO recon_diff (ftid, currency, class, w_minor, s_minor, l_minor, difference_minor, detail)
SELECT DISTINCT ON (q.source_record_id)
       NULL, upper(q.currency), 'stripe_quarantined', NULL, q.amount::bigint, NULL, -q.amount::bigint,
       jsonb_build_object('stripe_charge', q.stripe_charge, 'balance_transaction', q.source_record_id,
                          'quarantine_id', q.quarantine_id, 'quarantine_reason', q.reason)
FROM ops.reconciliation_quarantine q
WHERE q.source = 'stripe' AND q.stream = 'balance_transactions' AND q.resolved_at IS NULL
  AND q.reason LIKE 'unknown charge:%%'
  AND q.amount ~ '^-?[0-9]+$' AND q.created ~ '^[0-9]+$'
  AND to_timestamp(q.created::bigint) >= (%(month_start)s::date)::timestamp AT TIME ZONE 'UTC'
  AND to_timestamp(q.created::bigint) < (%(month_end)s::date)::timestamp AT TIME ZONE 'UTC'
ORDER BY q.source_record_id, q.quarantine_id DESC;

-- Payouts are account-level, not per gift: the month's Stripe payouts against the ledger's, per currency.
INSERT INTO recon_diff (ftid, currency, class, w_minor, s_minor, l_minor, difference_minor, detail)
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
                                       stripe_minor, ledger_minor, crm_minor, difference_minor, detail,
                                       donation_id, person_id, campaign, explained, explanation)
SELECT %(run_id)s, c.class, c.ftid, c.currency, c.w_minor, c.s_minor, c.l_minor, c.crm_minor, c.difference_minor,
       c.detail, d.donation_id, d.person_id, d.campaign,
       -- money held in the quarantine is accounted for by the quarantine (its gift's own class still counts)
       e.note IS NOT NULL OR c.class = 'stripe_quarantined',
       coalesce(e.note, CASE WHEN c.class = 'stripe_quarantined'
                             THEN 'held in ops.quarantine (id ' || (c.detail ->> 'quarantine_id') || '): '
                                  || (c.detail ->> 'quarantine_reason') END)
FROM recon_diff c
LEFT JOIN core.donation d ON d.financial_transaction_id = c.ftid
LEFT JOIN ops.reconciliation_explanation e ON e.financial_transaction_id = c.ftid AND e.class = c.class
WHERE c.class <> 'payout_accounted';

-- Totals per class and currency: accounted classes from the gifts, differing ones from the results.
INSERT INTO ops.reconciliation_total (run_id, class, currency, rows, warehouse_minor, stripe_minor, ledger_minor,
                                      crm_minor, difference_minor, unexplained)
SELECT %(run_id)s, t.class, t.currency, sum(t.rows), sum(t.w), sum(t.s), sum(t.l), sum(t.c), sum(t.difference),
       sum(t.unexplained)
FROM (
    SELECT a.class, g.currency, a.rows, a.w, a.s, a.l, a.c, 0 AS difference, 0 AS unexplained
    FROM (SELECT g.currency,
                 count(*) FILTER (WHERE g.class = 'matched') AS m_rows,
                 coalesce(sum(g.w_gross) FILTER (WHERE g.class = 'matched'), 0) AS m_w,
                 coalesce(sum(g.s_gross) FILTER (WHERE g.class = 'matched'), 0) AS m_s,
                 coalesce(sum(g.l_gross) FILTER (WHERE g.class = 'matched'), 0) AS m_l,
                 coalesce(sum(g.crm_gross) FILTER (WHERE g.class = 'matched'), 0) AS m_c,
                 count(*) FILTER (WHERE g.fee_class = 'fee_accounted') AS f_rows,
                 coalesce(sum(g.w_fee) FILTER (WHERE g.fee_class = 'fee_accounted'), 0) AS f_w,
                 coalesce(sum(g.s_fee) FILTER (WHERE g.fee_class = 'fee_accounted'), 0) AS f_s,
                 coalesce(sum(g.l_fee) FILTER (WHERE g.fee_class = 'fee_accounted'), 0) AS f_l,
                 count(*) FILTER (WHERE g.refund_class = 'refund_accounted') AS r_rows,
                 coalesce(sum(g.w_refunded) FILTER (WHERE g.refund_class = 'refund_accounted'), 0) AS r_w,
                 coalesce(sum(g.s_refunded) FILTER (WHERE g.refund_class = 'refund_accounted'), 0) AS r_s,
                 coalesce(sum(g.l_refunded) FILTER (WHERE g.refund_class = 'refund_accounted'), 0) AS r_l
          FROM recon_gift g GROUP BY g.currency) g
    CROSS JOIN LATERAL (VALUES ('matched', g.m_rows, g.m_w, g.m_s, g.m_l, g.m_c),
                               ('fee_accounted', g.f_rows, g.f_w, g.f_s, g.f_l, 0),
                               ('refund_accounted', g.r_rows, g.r_w, g.r_s, g.r_l, 0)) AS a(class, rows, w, s, l, c)
    WHERE a.rows > 0
    UNION ALL
    SELECT 'payout_accounted', c.currency, count(*), 0, coalesce(sum(c.s_minor), 0), coalesce(sum(c.l_minor), 0), 0, 0, 0
    FROM recon_diff c WHERE c.class = 'payout_accounted' GROUP BY c.currency
    UNION ALL
    SELECT r.class, coalesce(r.currency, '---'), count(*), coalesce(sum(r.warehouse_minor), 0),
           coalesce(sum(r.stripe_minor), 0), coalesce(sum(r.ledger_minor), 0), coalesce(sum(r.crm_minor), 0),
           sum(r.difference_minor),
           count(*) FILTER (WHERE NOT r.explained)
    FROM ops.reconciliation_result r WHERE r.run_id = %(run_id)s GROUP BY r.class, coalesce(r.currency, '---')
) t
GROUP BY t.class, t.currency;

UPDATE ops.reconciliation_run r
SET finished_at = clock_timestamp(),
    gifts = (SELECT count(*) FROM recon_gift),
    unexplained_count = t.unexplained,
    status = CASE WHEN t.unexplained > 0 THEN 'failed' ELSE 'passed' END
FROM (SELECT coalesce(sum(unexplained), 0) AS unexplained FROM ops.reconciliation_total
      WHERE run_id = %(run_id)s) t
WHERE r.run_id = %(run_id)s;
