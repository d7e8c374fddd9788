"""Crafted finance rows, inserted into the contract tables of 0002 by the same columns the sync fills."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime

import psycopg
import pytest

_ids = itertools.count(1)


class Books:
    """Writes donations, Stripe balance transactions and ledger postings into a real warehouse."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def donation(self, ftid: str, amount: int, currency: str = "USD", *, day: date = date(2024, 3, 10),
                 refunded: int = 0, status: str | None = None, person_id: str | None = None,
                 campaign: str | None = None) -> None:  # fmt: skip
        status = status or ("refunded" if refunded and refunded >= amount else "partially_refunded" if refunded
                            else "succeeded")  # fmt: skip
        self.conn.execute(
            "INSERT INTO core.donation (financial_transaction_id, person_id, amount_minor, currency, received_at,"
            " status, refunded_minor, campaign, source, source_record_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'stripe', %s)",
            (ftid, person_id, amount, currency, datetime(day.year, day.month, day.day, 12, tzinfo=UTC), status,
             refunded, campaign, f"ch_{next(_ids)}"),
        )  # fmt: skip

    def stripe(self, ftid: str | None, amount: int, currency: str = "USD", *, kind: str = "charge", fee: int = 0,
               day: date = date(2024, 3, 10)) -> None:  # fmt: skip
        self.conn.execute(
            "INSERT INTO core.balance_transaction (financial_transaction_id, type, source_object_id, amount_minor,"
            " fee_minor, net_minor, currency, status, created_at, source, source_record_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, 'available', %s, 'stripe', %s)",
            (ftid, kind, f"obj_{next(_ids)}", amount, fee, amount - fee, currency,
             datetime(day.year, day.month, day.day, 12, tzinfo=UTC), f"txn_{next(_ids)}"),
        )  # fmt: skip

    def ledger(self, ftid: str, amount: int, currency: str = "USD", *, account: str = "4000 Contributions",
               day: date = date(2024, 3, 10)) -> None:  # fmt: skip
        reference = f"ref_{next(_ids)}"
        self.conn.execute(
            "INSERT INTO core.ledger_posting (financial_transaction_id, posting_date, account, amount_minor,"
            " currency, reference, source, source_record_id) VALUES (%s, %s, %s, %s, %s, %s, 'ledger', %s)",
            (ftid, day, account, amount, currency, reference, reference),
        )

    def gift(self, ftid: str, amount: int, currency: str = "USD", *, fee: int = 0, **kwargs) -> None:
        """A gift as all three systems should show it: donation, charge, ledger contribution and fee."""
        self.donation(ftid, amount, currency, **kwargs)
        self.stripe(ftid, amount, currency, fee=fee, day=kwargs.get("day", date(2024, 3, 10)))
        self.ledger(ftid, amount, currency, day=kwargs.get("day", date(2024, 3, 10)))
        if fee:
            self.ledger(ftid, -fee, currency, account="6100 Payment processing fees",
                        day=kwargs.get("day", date(2024, 3, 10)))  # fmt: skip


@pytest.fixture
def books(warehouse_url: str):
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        yield Books(conn)
