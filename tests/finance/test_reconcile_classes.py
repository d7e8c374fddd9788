"""Reconciliation classes on crafted rows in a real warehouse: exact to the cent, per currency."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime

import psycopg
import pytest

from cdp.finance.reconcile import UnexplainedDifference, reconcile_month, require_reconciled
from cdp.warehouse import Actor

ACTOR = Actor("pytest")


def _classes(url: str, run_id: int) -> dict[tuple[str, str], tuple[str | None, int]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT class, coalesce(financial_transaction_id, currency), currency, difference_minor"
            " FROM ops.reconciliation_result WHERE run_id = %s",
            (run_id,),
        ).fetchall()
    return {(c, key): (currency and currency.strip(), diff) for c, key, currency, diff in rows}


def test_every_class_on_crafted_cases(warehouse_url: str, books) -> None:
    books.gift("FT-OK", 4000, fee=146)  # matched, fee accounted
    books.donation("FT-SPLIT", 10000)  # the ledger posts one gift in two lines: still matched
    books.stripe("FT-SPLIT", 10000)
    books.ledger("FT-SPLIT", 2500)
    books.ledger("FT-SPLIT", 7500)
    books.donation("FT-ROUND", 1999)  # 19.99 posted rounded to 20.00: off by one cent is a mismatch
    books.stripe("FT-ROUND", 1999)
    books.ledger("FT-ROUND", 2000)
    books.donation("FT-CUR", 5000, "EUR")  # the ledger booked euros as dollars
    books.stripe("FT-CUR", 5000, "EUR")
    books.ledger("FT-CUR", 5000, "USD")
    books.donation("FT-REF", 3000, refunded=3000)  # fully refunded everywhere: refund accounted
    books.stripe("FT-REF", 3000)
    books.stripe("FT-REF", -3000, kind="refund", day=date(2024, 4, 2))
    books.ledger("FT-REF", 3000)
    books.ledger("FT-REF", -3000, day=date(2024, 4, 2))
    books.donation("FT-REF2", 2000, refunded=1000)  # partial refund the ledger never reversed
    books.stripe("FT-REF2", 2000)
    books.stripe("FT-REF2", -1000, kind="refund")
    books.ledger("FT-REF2", 2000)
    books.donation("FT-DUP", 2500)  # the ledger posted the same gift twice
    books.stripe("FT-DUP", 2500)
    books.ledger("FT-DUP", 2500)
    books.ledger("FT-DUP", 2500)
    books.donation("FT-WONLY", 1500)
    books.stripe("FT-WONLY", 1500)
    books.stripe("FT-LONLY", 7000)  # the warehouse lost this gift
    books.ledger("FT-LONLY", 7000)
    books.stripe("FT-SONLY", 900, "GBP")
    books.donation("FT-NS", 1200)
    books.ledger("FT-NS", 1200)
    books.gift("FT-FEB", 99999, day=date(2024, 2, 29))  # another month: not in March's run
    books.stripe(None, -50000, kind="payout", day=date(2024, 3, 15))
    books.ledger("PAYOUT-0315", 50000, account="1020 Stripe payouts", day=date(2024, 3, 15))
    books.stripe(None, -1000, "EUR", kind="payout", day=date(2024, 3, 20))  # not in the ledger

    result = reconcile_month(warehouse_url, "2024-03", actor=ACTOR)

    assert _classes(warehouse_url, result.run_id) == {
        ("amount_mismatch", "FT-ROUND"): ("USD", -1),
        ("currency_mismatch", "FT-CUR"): ("EUR", 0),
        ("refund_mismatch", "FT-REF2"): ("USD", 1000),
        ("duplicate", "FT-DUP"): ("USD", -2500),
        ("in_warehouse_not_ledger", "FT-WONLY"): ("USD", 1500),
        ("in_ledger_not_warehouse", "FT-LONLY"): ("USD", -7000),
        ("in_stripe_only", "FT-SONLY"): ("GBP", -900),
        ("not_in_stripe", "FT-NS"): ("USD", 0),
        ("payout_mismatch", "EUR"): ("EUR", 1000),
    }
    assert result.total("matched") == (4, 0)  # FT-OK, FT-SPLIT, FT-REF and FT-REF2 (its gift; not its refund)
    assert result.total("fee_accounted") == (1, 0)
    assert result.total("refund_accounted") == (1, 0)
    assert result.total("payout_accounted", "USD") == (1, 0)
    assert result.gifts == 11  # FT-FEB belongs to February
    assert result.status == "failed" and result.unexplained == 9
    with pytest.raises(UnexplainedDifference, match="did not reconcile: 9 unexplained"):
        require_reconciled(result)


def test_totals_are_exact_per_currency(warehouse_url: str, books) -> None:
    books.gift("FT-U1", 1001)
    books.gift("FT-U2", 2002)
    books.gift("FT-E1", 333, "EUR")
    books.donation("FT-E2", 10, "EUR")  # one cent of difference in euros is still a difference
    books.stripe("FT-E2", 10, "EUR")
    books.ledger("FT-E2", 11, "EUR")

    result = reconcile_month(warehouse_url, date(2024, 3, 1), actor=ACTOR)

    by_currency = {(t.class_, t.currency): (t.rows, t.warehouse_minor, t.ledger_minor) for t in result.totals}
    assert by_currency == {
        ("matched", "USD"): (2, 3003, 3003),
        ("matched", "EUR"): (1, 333, 333),
        ("amount_mismatch", "EUR"): (1, 10, 11),
    }


def test_an_explained_difference_no_longer_fails_the_run(warehouse_url: str, books) -> None:
    books.gift("FT-OK", 4000)
    books.donation("FT-LATE", 2500)  # posted by finance in the next month
    books.stripe("FT-LATE", 2500)

    first = reconcile_month(warehouse_url, "2024-03", actor=ACTOR)
    assert first.status == "failed" and first.unexplained == 1

    books.conn.execute(
        "INSERT INTO ops.reconciliation_explanation (financial_transaction_id, class, note)"
        " VALUES ('FT-LATE', 'in_warehouse_not_ledger', 'posted 2024-04-01, batch 17')"
    )
    second = reconcile_month(warehouse_url, "2024-03", actor=ACTOR)

    assert second.status == "passed" and second.unexplained == 0
    require_reconciled(second)
    assert _classes(warehouse_url, second.run_id) == {("in_warehouse_not_ledger", "FT-LATE"): ("USD", 2500)}


def test_report_has_totals_differences_and_history(warehouse_url: str, books, tmp_path) -> None:
    books.gift("FT-OK", 4000, day=date(2024, 2, 5))
    reconcile_month(warehouse_url, "2024-02", actor=ACTOR, report_dir=tmp_path)
    books.gift("FT-OK2", 4000)
    books.ledger("FT-LONLY", 123456)

    result = reconcile_month(warehouse_url, "2024-03", actor=ACTOR, report_dir=tmp_path)

    page = result.report_html.read_text()
    assert "NOT reconciled: 1 unexplained" in page
    assert "FT-LONLY" in page and "-1,234.56 USD" in page
    assert "2024-02" in page and "2024-03" in page  # month over month
    rows = list(csv.DictReader(result.report_csv.open()))
    differing = [row for row in rows if row["section"] == "difference"]
    assert [
        (r["class"], r["financial_transaction_id"], r["ledger_minor"], r["difference_minor"])
        for r in differing
    ] == [("in_ledger_not_warehouse", "FT-LONLY", "123456", "-123456")]
    history = sorted((r["month"], r["class"], r["rows"]) for r in rows if r["section"] == "history")
    assert history == [
        ("2024-02", "matched", "1"),
        ("2024-03", "in_ledger_not_warehouse", "1"),
        ("2024-03", "matched", "1"),
    ]


def test_a_gift_the_crm_never_got_is_reported_once_the_crm_was_read(warehouse_url: str, books) -> None:
    """``not_in_crm``: a gift with no Opportunity at all, compared only once the CRM was read past the month."""
    books.gift("FT-CRM", 4000)
    books.gift("FT-NOCRM", 2500)
    books.conn.execute(
        "UPDATE core.donation SET crm_source_record_id = '006A', crm_amount_minor = 4000, crm_currency = 'USD',"
        " crm_stage = 'Pledged' WHERE financial_transaction_id = 'FT-CRM'"  # any stage: the CRM has the gift
    )

    def crm_read_until(end: datetime) -> None:
        books.conn.execute(
            "INSERT INTO ops.sync_run (run_id, source, stream, window_end, started_at)"
            " VALUES (%s, 'salesforce', 'Opportunity', %s, now())",
            (f"sync-{end:%Y%m%d}", end),
        )

    crm_read_until(datetime(2024, 3, 31, 23, tzinfo=UTC))  # the CRM read before the month ended: not compared
    assert _classes(warehouse_url, reconcile_month(warehouse_url, "2024-03", actor=ACTOR).run_id) == {}

    crm_read_until(datetime(2024, 4, 1, tzinfo=UTC))
    result = reconcile_month(warehouse_url, "2024-03", actor=ACTOR)
    assert _classes(warehouse_url, result.run_id) == {("not_in_crm", "FT-NOCRM"): ("USD", 2500)}
    assert result.total("not_in_crm") == (1, 2500)
    assert result.total("matched") == (2, 0)  # its gift matches Stripe and the ledger: only the CRM lacks it
    assert result.status == "failed" and result.unexplained == 1
