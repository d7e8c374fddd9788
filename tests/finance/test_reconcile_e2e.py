"""End to end: Stripe charges synced from the sandbox (as today), Stripe balance transactions and ledger
postings loaded from the generator's own records by the contract's columns (until their sync mappings are
merged), and a silent donation loss during the sync caught by the next reconciliation, to the cent."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest

from cdp.finance.reconcile import reconcile_month
from cdp.sandbox.faults import Fault
from cdp.sandbox.generator import World
from cdp.sandbox.server import SandboxServer
from cdp.sources import registry
from cdp.sync.engine import sync_stream
from cdp.sync.specs import spec_for
from cdp.warehouse import Actor

ACTOR = Actor("pytest")
MONTH = "2023-07"  # seed 39 plants a gift missing from the ledger and a keying error in it
MONTH_START, MONTH_END = datetime(2023, 7, 1, tzinfo=UTC), datetime(2023, 8, 1, tzinfo=UTC)


def _load_stripe_and_ledger(url: str, world: World) -> None:
    """What the balance-transaction and ledger syncs will land: valid records only (rejects are quarantined)."""
    ftid_of = {}
    for kind in ("charges", "refunds"):
        for record in world.records("stripe", kind):
            ftid_of[record["id"]] = record["metadata"]["financial_transaction_id"]
    bad_txns = set(world.truth.malformed("stripe", "balance_transactions"))
    bad_lines = set(world.truth.malformed("ledger", "postings"))
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO core.balance_transaction (financial_transaction_id, type, source_object_id, amount_minor,"
            " fee_minor, net_minor, currency, status, reporting_category, created_at, source, source_record_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, to_timestamp(%s), 'stripe', %s)",
            [
                (ftid_of.get(t["source"]), t["type"], t["source"], t["amount"], t["fee"], t["net"],
                 t["currency"].upper(), t["status"], t["reporting_category"], t["created"], t["id"])
                for t in world.records("stripe", "balance_transactions")
                if t["id"] not in bad_txns
            ],
        )  # fmt: skip
        cursor.executemany(
            "INSERT INTO core.ledger_posting (financial_transaction_id, posting_date, account, amount_minor,"
            " currency, reference, source, source_record_id) VALUES (%s, %s, %s, %s, %s, %s, 'ledger', %s)",
            [
                (p["transaction_id"], p["posting_date"], p["account"], int(Decimal(p["amount"]) * 100),
                 p["currency"], p["reference"], p["reference"])
                for p in world.records("ledger", "postings")
                if p["reference"] not in bad_lines
            ],
        )  # fmt: skip


@pytest.mark.slow
def test_a_silent_donation_loss_is_caught_with_the_right_amount(warehouse_url: str) -> None:
    world = World(seed=39, learners=400)
    with SandboxServer(world) as sandbox:
        # The seed story: the processor's API silently leaves gifts out of its listing.
        lost = sandbox.faults.add(Fault("drop_records", "stripe", "charges", count=6, since=MONTH_START,
                                        until=MONTH_END))  # fmt: skip
        spec = spec_for("stripe", "charges")
        stream = registry.stream("stripe", "charges", sandbox.settings("stripe"))
        sync_stream(warehouse_url, stream, spec, actor=ACTOR, run_id="sync", interval_end=world.end)
    _load_stripe_and_ledger(warehouse_url, world)

    result = reconcile_month(warehouse_url, MONTH, actor=ACTOR)

    charges = {c["id"]: c for c in world.records("stripe", "charges")}
    truth = world.truth.ledger.discrepancies
    quarantined = {
        charges[i]["metadata"]["financial_transaction_id"] for i in world.truth.malformed("stripe", "charges")
    }
    dropped = {charges[i]["metadata"]["financial_transaction_id"]: charges[i] for i in lost.affected_ids}
    assert len(dropped) == 6
    in_month = {
        c["metadata"]["financial_transaction_id"]
        for c in world.records("stripe", "charges", MONTH_START, MONTH_END)
    }
    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute(
            "SELECT class, financial_transaction_id, ledger_minor, stripe_minor, difference_minor, currency"
            " FROM ops.reconciliation_result WHERE run_id = %s",
            (result.run_id,),
        ).fetchall()
    by_class: dict[str, dict[str, tuple]] = {}
    for cls, ftid, ledger, stripe, difference, currency in rows:
        by_class.setdefault(cls, {})[ftid] = (ledger, stripe, difference, currency)

    # Every lost gift (and every quarantined one) is found, at the amount the ledger and Stripe have.
    expected_missing = (set(dropped) | (quarantined & in_month)) - set(truth["missing_in_ledger"])
    assert set(by_class["in_ledger_not_warehouse"]) == expected_missing
    for ftid, charge in dropped.items():
        if ftid in truth["missing_in_ledger"]:
            continue
        ledger, stripe, difference, currency = by_class["in_ledger_not_warehouse"][ftid]
        posted = charge["amount"] * (10 if ftid in truth["ledger_amount_mismatch"] else 1)
        assert (ledger, stripe, difference, currency) == (
            posted,
            charge["amount"],
            -posted,
            charge["currency"].upper(),
        )
    lost_minor = sum(
        -by_class["in_ledger_not_warehouse"][f][2] for f in dropped if f not in truth["missing_in_ledger"]
    )
    assert lost_minor > 0
    # The generator's other planted discrepancies of the month, exactly.
    assert (
        set(by_class.get("in_warehouse_not_ledger", {}))
        == (set(truth["missing_in_ledger"]) & in_month) - set(dropped) - quarantined
    )
    assert (
        set(by_class.get("amount_mismatch", {}))
        == (set(truth["ledger_amount_mismatch"]) & in_month) - set(dropped) - quarantined
    )
    assert by_class.get("in_warehouse_not_ledger") or by_class.get("amount_mismatch")  # the month has some
    assert result.status == "failed"
    matched_rows, matched_difference = result.total("matched")
    assert matched_difference == 0
    assert matched_rows == len(in_month) - sum(
        len(by_class.get(c, {})) for c in ("in_ledger_not_warehouse", "in_warehouse_not_ledger", "amount_mismatch",
                                            "in_stripe_only", "duplicate", "currency_mismatch", "not_in_stripe")
    )  # fmt: skip
