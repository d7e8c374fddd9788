"""Stripe objects change after they are made: a refund succeeds a day later, a charge is disputed. The changes
arrive through the Events API (served by a server that follows Stripe's list protocol, with Stripe's own
example objects) and change the warehouse and the monthly reconciliation exactly; a cursor older than
Stripe keeps events falls back to re-listing."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from stripe_material import KEY, ConformingStripe, errors, example

from cdp.finance.reconcile import reconcile_month
from cdp.sources import registry
from cdp.sources.base import SourceSettings
from cdp.sources.stripe import CHANGES, REREAD_HORIZON, StripeClient, StripeListStream
from cdp.sync.engine import sync_stream
from cdp.sync.specs import spec_for
from cdp.warehouse import Actor
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer
from cdp_sandbox.stripe import DISPUTE_FEE, plant_dispute

ACTOR = Actor("pytest")
STREAMS = ("charges", "refunds", "balance_transactions")
NOW = datetime.now(UTC).replace(microsecond=0)
C0 = NOW - timedelta(days=3)  # when both gifts were made
T0 = int(C0.timestamp())
DAY = 86_400


def _charge(charge_id: str, amount: int) -> dict[str, Any]:
    charge = example("charge")
    charge.update(id=charge_id, amount=amount, amount_captured=amount, captured=True, currency="usd", created=T0,
                  metadata={}, status="succeeded", balance_transaction=f"txn_{charge_id}", refunded=False)  # fmt: skip
    return charge


def _txn(txn_id: str, source: str, amount: int, fee: int, created: int, kind: str, category: str) -> dict:
    txn = example("balance_transaction")
    txn.update(id=txn_id, source=source, amount=amount, fee=fee, net=amount - fee, currency="usd", created=created,
               available_on=created + 2 * DAY, type=kind, reporting_category=category, status="available")  # fmt: skip
    txn["fee_details"] = [] if not fee else [{"amount": fee, "application": None, "currency": "usd",
                                              "description": "Stripe fee", "type": "stripe_fee"}]  # fmt: skip
    return txn


def _event(event_id: str, kind: str, created: int, obj: dict[str, Any]) -> dict[str, Any]:
    event = example("event")
    event.update(id=event_id, type=kind, created=created, data={"object": copy.deepcopy(obj)})
    return event


def _sync_all(url: str, server: ConformingStripe, end: datetime, run: str) -> None:
    settings = SourceSettings(server.url, KEY, {"page_size": 2})
    for name in STREAMS:
        stream = registry.stream("stripe", name, settings)
        sync_stream(url, stream, spec_for("stripe", name), actor=ACTOR, run_id=run, interval_end=end)


def _results(url: str, run_id: int) -> dict[tuple[str, str], tuple]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT financial_transaction_id, class, warehouse_minor, stripe_minor, ledger_minor, difference_minor,"
            " detail FROM ops.reconciliation_result WHERE run_id = %s",
            (run_id,),
        ).fetchall()
    return {(ftid, cls): tuple(rest) for ftid, cls, *rest in rows}


def test_a_refund_that_succeeds_a_day_later_and_a_dispute_change_the_reconciliation_exactly(
    warehouse_url: str,
) -> None:
    gift, disputed = _charge("ch_changes_gift", 5000), _charge("ch_changes_disputed", 3000)
    refund = example("refund")
    refund.update(id="re_changes", charge=gift["id"], amount=2000, currency="usd", created=T0 + 3600,
                  status="pending", balance_transaction="txn_re_changes", metadata={})  # fmt: skip
    objects: dict[str, list[dict]] = {
        "charges": [gift, disputed],
        "refunds": [refund],
        "balance_transactions": [
            _txn("txn_ch_changes_gift", gift["id"], 5000, 175, T0, "charge", "charge"),
            _txn("txn_ch_changes_disputed", disputed["id"], 3000, 117, T0, "charge", "charge"),
            _txn("txn_re_changes", refund["id"], -2000, 0, T0 + 3600, "refund", "refund"),
        ],
        "events": [],
    }
    month = f"{C0:%Y-%m}"
    with psycopg.connect(warehouse_url, autocommit=True) as conn:  # finance's books: both gifts, the refund
        for ftid, amount, account, day in (
            (gift["id"], 5000, "4000 Contributions", C0), (gift["id"], -175, "6100 Payment processing fees", C0),
            (gift["id"], -2000, "4090 Contribution refunds", C0 + timedelta(days=1)),
            (disputed["id"], 3000, "4000 Contributions", C0),
            (disputed["id"], -117, "6100 Payment processing fees", C0),
        ):  # fmt: skip
            reference = f"{ftid}-{account[:4]}"
            conn.execute(
                "INSERT INTO core.ledger_posting (financial_transaction_id, posting_date, account, amount_minor,"
                " currency, reference, source, source_record_id) VALUES (%s, %s, %s, %s, 'USD', %s, 'ledger', %s)",
                (ftid, day.date(), account, amount, reference, reference),
            )

    with ConformingStripe(objects) as server:
        _sync_all(warehouse_url, server, C0 + timedelta(hours=2), "before")
        before = _results(warehouse_url, reconcile_month(warehouse_url, month, actor=ACTOR).run_id)

        # A day later the refund succeeds and the other gift is disputed: Stripe says so in events.
        refund["status"] = "succeeded"
        gift.update(amount_refunded=2000)
        withdrawal = _txn("txn_dispute", "dp_changes", -3000, 1500, T0 + DAY, "adjustment", "dispute")
        dispute = example("dispute")
        dispute.update(id="dp_changes", charge=disputed["id"], amount=3000, currency="usd", created=T0 + DAY,
                       status="needs_response", balance_transactions=[withdrawal])  # fmt: skip
        disputed.update(disputed=True)
        objects["balance_transactions"].append(withdrawal)
        objects["events"] += [
            _event("evt_refund", "charge.refund.updated", T0 + DAY, refund),
            _event("evt_charge", "charge.refunded", T0 + DAY, gift),
            _event("evt_dispute", "charge.dispute.funds_withdrawn", T0 + DAY + 60, dispute),
        ]
        assert all(errors("event", e) == [] for e in objects["events"])
        _sync_all(warehouse_url, server, C0 + timedelta(days=2), "after")
        after = _results(warehouse_url, reconcile_month(warehouse_url, month, actor=ACTOR).run_id)

    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute(
            "SELECT status FROM core.refund WHERE source_record_id = 're_changes'"
        ).fetchone() == ("succeeded",)
        assert conn.execute(
            "SELECT refunded_minor, status FROM core.donation WHERE financial_transaction_id = %s",
            (gift["id"],),
        ).fetchone() == (2000, "partially_refunded")
        assert conn.execute(
            "SELECT financial_transaction_id, amount_minor, fee_minor, source_object_id FROM core.balance_transaction"
            " WHERE source_record_id = 'txn_dispute'"
        ).fetchone() == (disputed["id"], -3000, 1500, "dp_changes")
        assert conn.execute("SELECT count(*) FROM ops.quarantine").fetchone() == (0,)
        # The dispute itself, keyed by Stripe's id, with the balance transaction of the money it withdrew.
        assert conn.execute(
            "SELECT source_record_id, charge_id, financial_transaction_id, amount_minor, currency, status, reason,"
            " balance_transaction_ids FROM core.dispute"
        ).fetchall() == [
            ("dp_changes", disputed["id"], disputed["id"], 3000, "USD", "needs_response", dispute["reason"],
             ["txn_dispute"])
        ]  # fmt: skip

    # Before: Stripe and the ledger refunded 20.00, the warehouse (refund still pending) nothing.
    assert before == {(gift["id"], "refund_mismatch"): (0, 2000, 2000, -2000, {})}
    # After: the refund is accounted on every side; the dispute's 30.00 withdrawn (and 15.00 fee) is named.
    assert after == {
        (disputed["id"], "dispute"): (
            3000, 3000, 3000, -3000,
            {"withdrawn_minor": 3000, "dispute_fee_minor": 1500, "dispute_movements": 1,
             "dispute_status": "needs_response"},
        )
    }  # fmt: skip


def test_a_cursor_older_than_stripe_keeps_events_re_lists_what_may_have_changed() -> None:
    cursor = NOW - timedelta(days=40)  # Stripe no longer has the events of the first ten days after it
    old, ancient = example("refund"), example("refund")
    old.update(
        id="re_old", charge="ch_old", created=int((NOW - timedelta(days=100)).timestamp()), status="failed"
    )
    ancient.update(id="re_ancient", created=int((cursor - REREAD_HORIZON - timedelta(days=1)).timestamp()))
    with ConformingStripe({"refunds": [old, ancient], "events": []}) as server:
        stream = StripeListStream(StripeClient(SourceSettings(server.url, KEY, {})), "refunds")
        recent = [r["id"] for page in stream.read(NOW - timedelta(days=2), NOW) for r in page]
        lost = [r["id"] for page in stream.read(cursor, NOW) for r in page]
        backfill = [r["id"] for page in stream.read(cursor, cursor + timedelta(days=1)) for r in page]
    assert recent == [] and lost == ["re_old"] and backfill == []
    assert set(CHANGES) == set(STREAMS)


def test_a_dispute_in_the_sandbox_reaches_the_reconciliation_of_its_gifts_month(warehouse_url: str) -> None:
    world = World(seed=16, learners=250, donations=400, malformed_rate=0.0)
    charges = list(world.records("stripe", "charges"))
    donation = len(charges) // 2
    charge = charges[donation]
    now = int(NOW.timestamp())
    event = plant_dispute(world, donation, now - 3600)
    assert errors("event", event) == [] and errors("dispute", event["data"]["object"]) == []
    with SandboxServer(world) as sandbox:
        settings = sandbox.settings("stripe")
        for end in (NOW - timedelta(hours=2), NOW):  # the dispute comes after the first sync
            for name in STREAMS:
                stream = registry.stream("stripe", name, settings)
                sync_stream(warehouse_url, stream, spec_for("stripe", name), actor=ACTOR, run_id=f"{end}",
                            interval_end=end)  # fmt: skip
    month = datetime.fromtimestamp(charge["created"], UTC).strftime("%Y-%m")
    results = _results(warehouse_url, reconcile_month(warehouse_url, month, actor=ACTOR).run_id)
    withdrawn = event["data"]["object"]["balance_transactions"][0]
    assert results[(charge["id"], "dispute")][3:] == (
        -charge["amount"], {"withdrawn_minor": charge["amount"], "dispute_fee_minor": withdrawn["fee"],
                            "dispute_movements": 1, "dispute_status": "needs_response"},
    )  # fmt: skip
    assert [key for key in results if key[1] == "dispute"] == [(charge["id"], "dispute")]


def test_stripes_own_example_dispute_lands_in_core_and_its_money_in_the_reconciliation(
    warehouse_url: str,
) -> None:
    """Stripe's example dispute (fixtures3.json, as it is) is listed by /v1/disputes on the first read and lands in
    core.dispute; Stripe then closes it as lost, withdrawing the money: the events change core.dispute and the
    reconciliation names the money exactly. A dispute whose charge is not in the warehouse waits in the
    quarantine with its reason."""
    dispute = example("dispute")
    assert errors("dispute", dispute) == []
    charge = example("charge")  # the charge Stripe's example dispute names, for the disputed amount
    assert charge["id"] == dispute["charge"]
    charge.update(amount=dispute["amount"], amount_captured=dispute["amount"], metadata={})
    txn = example("balance_transaction")
    assert txn["source"] == charge["id"] and txn["id"] == charge["balance_transaction"]
    txn.update(amount=charge["amount"], fee=0, net=charge["amount"], fee_details=[])
    stray = example("dispute") | {"id": "dp_stray", "charge": "ch_not_here"}
    objects: dict[str, list[dict]] = {
        "charges": [charge], "balance_transactions": [txn], "disputes": [dispute, stray], "refunds": [], "events": [],
    }  # fmt: skip
    charged_on = datetime.fromtimestamp(charge["created"], UTC)
    with psycopg.connect(warehouse_url, autocommit=True) as conn:  # finance booked the gift
        conn.execute(
            "INSERT INTO core.ledger_posting (financial_transaction_id, posting_date, account, amount_minor,"
            " currency, reference, source, source_record_id)"
            " VALUES (%s, %s, '4000 Contributions', %s, 'USD', 'ex-4000', 'ledger', 'ex-4000')",
            (charge["id"], charged_on.date(), charge["amount"]),
        )
    dispute_row = (
        "SELECT source_record_id, charge_id, payment_intent_id, financial_transaction_id, amount_minor, currency,"
        " status, reason, balance_transaction_ids, created_at FROM core.dispute"
    )
    with ConformingStripe(objects) as server:
        _sync_all(warehouse_url, server, C0, "first")
        with psycopg.connect(warehouse_url) as conn:
            first = conn.execute(dispute_row).fetchall()
            waiting = conn.execute(
                "SELECT source_record_id, reason, reason_value FROM ops.quarantine WHERE resolved_at IS NULL"
            ).fetchall()
        month = f"{charged_on:%Y-%m}"
        before = _results(warehouse_url, reconcile_month(warehouse_url, month, actor=ACTOR).run_id)

        # Stripe withdraws the money (and its fee) and closes the dispute as lost: two events of one dispute.
        withdrawal = _txn(
            "txn_example_dispute", dispute["id"], -dispute["amount"], 1500, T0, "adjustment", "dispute"
        )
        withdrawn = dispute | {"status": "needs_response", "balance_transactions": [withdrawal]}
        lost = dispute | {"status": "lost", "balance_transactions": [withdrawal]}
        assert errors("dispute", lost) == []
        objects["disputes"][0] = lost
        objects["balance_transactions"].append(withdrawal)
        objects["events"] += [_event("evt_withdrawn", "charge.dispute.funds_withdrawn", T0, withdrawn),
                              _event("evt_closed", "charge.dispute.closed", T0 + 60, lost)]  # fmt: skip
        _sync_all(warehouse_url, server, C0 + timedelta(days=1), "second")
        after = _results(warehouse_url, reconcile_month(warehouse_url, month, actor=ACTOR).run_id)
    with psycopg.connect(warehouse_url) as conn:
        second = conn.execute(dispute_row).fetchall()
        traced = conn.execute(
            "SELECT financial_transaction_id, amount_minor, fee_minor FROM core.balance_transaction"
            " WHERE source_object_id = %s",
            (dispute["id"],),
        ).fetchall()

    opened = datetime.fromtimestamp(dispute["created"], UTC)
    assert first == [(dispute["id"], charge["id"], None, charge["id"], dispute["amount"], "USD",
                      "warning_needs_response", "general", [], opened)]  # fmt: skip
    assert waiting == [("dp_stray", "unknown charge: the stripe charge in charge of this dispute is not in the"
                        " warehouse yet", "ch_not_here")]  # fmt: skip
    # An inquiry that has moved no money is no difference; the quarantined dispute is named with what it disputes.
    assert {key: value[:4] for key, value in before.items()} == {
        (None, "stripe_quarantined"): (None, stray["amount"], None, -stray["amount"])
    }
    after.pop((None, "stripe_quarantined"))
    assert second == [(dispute["id"], charge["id"], None, charge["id"], dispute["amount"], "USD", "lost", "general",
                       ["txn_example_dispute"], opened)]  # fmt: skip
    assert traced == [(charge["id"], -dispute["amount"], 1500)]
    assert after == {
        (charge["id"], "dispute"): (
            dispute["amount"], dispute["amount"], dispute["amount"], -dispute["amount"],
            {"withdrawn_minor": dispute["amount"], "dispute_fee_minor": 1500, "dispute_movements": 1,
             "dispute_status": "lost"},
        )
    }  # fmt: skip


def test_the_newest_state_wins_when_one_window_holds_several_states_of_an_object(warehouse_url: str) -> None:
    """Stripe lists events newest first: a window holding a charge's pending and succeeded events (the charge
    made before the window) and a refund's pending and succeeded ones lands the succeeded states."""
    charge = _charge("ch_states", 4000)
    refund = example("refund")
    refund.update(id="re_states", charge=charge["id"], amount=4000, currency="usd", created=T0 + 60,
                  status="succeeded", balance_transaction=None, metadata={})  # fmt: skip
    objects: dict[str, list[dict]] = {
        "charges": [charge],
        "refunds": [],
        "balance_transactions": [],
        "events": [],
    }
    with ConformingStripe(objects) as server:
        _sync_all(warehouse_url, server, C0 + timedelta(minutes=1), "made")  # the charge as it was then
        objects["refunds"].append(refund)  # made before the next window too, seen through its events
        pending_charge = charge | {"status": "pending", "paid": False}
        pending_refund = refund | {"status": "pending"}
        objects["events"] += [
            _event("evt_c1", "charge.pending", T0 + 120, pending_charge),
            _event("evt_r1", "charge.refund.updated", T0 + 180, pending_refund),
            _event("evt_c2", "charge.succeeded", T0 + DAY, charge),
            _event("evt_r2", "charge.refund.updated", T0 + DAY + 60, refund),
        ]
        _sync_all(warehouse_url, server, C0 + timedelta(days=2), "changed")
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute(
            "SELECT status, refunded_minor FROM core.donation WHERE source_record_id = %s", (charge["id"],)
        ).fetchone() == ("refunded", 4000)
        assert conn.execute(
            "SELECT status FROM core.refund WHERE source_record_id = 're_states'"
        ).fetchone() == ("succeeded",)


def test_the_default_sandbox_worlds_late_changes_and_disputes_reach_core_and_the_reconciliation(
    warehouse_url: str,
) -> None:
    """The default world's late changes (a pending charge that succeeds, a refund a day after its charge, a
    refund that fails) and, asked for, disputes opened then won or lost, synced as the schedule does (events
    read in the window that reaches the present), land as the world's truth says, to the cent."""
    world = World(
        seed=16, learners=250, donations=400, malformed_rate=0.0, today=NOW.date(), stripe_disputes=2
    )
    assert isinstance(world.today, date) and world.dispute_donation.shape[0] == 2
    charges = {i: c for i, c in enumerate(world.records("stripe", "charges"))}
    refunds = list(world.records("stripe", "refunds"))
    with SandboxServer(world) as sandbox:
        settings = sandbox.settings("stripe")
        for end in (NOW - timedelta(days=20), NOW):  # the second window's events are read
            for name in STREAMS:
                stream = registry.stream("stripe", name, settings)
                sync_stream(warehouse_url, stream, spec_for("stripe", name), actor=ACTOR, run_id=f"{end}",
                            interval_end=end)  # fmt: skip
    failed = [r for r in refunds if r["status"] == "failed"]
    late = charges[world.late_refund_donation]
    pending = charges[world.late_pending_charge]
    assert len(failed) == 1 and late["refunded"] and pending["status"] == "succeeded"
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("SELECT count(*) FROM ops.quarantine").fetchone() == (0,)
        donations = {
            ftid: (status, refunded)
            for ftid, status, refunded in conn.execute(
                "SELECT financial_transaction_id, status, refunded_minor FROM core.donation"
            )
        }
        refund_status = dict(conn.execute("SELECT source_record_id, status FROM core.refund"))
        disputes = dict(conn.execute("SELECT charge_id, status FROM core.dispute"))
    assert donations[failed[0]["charge"]] == ("succeeded", 0) and refund_status[failed[0]["id"]] == "failed"
    assert donations[late["id"]] == ("refunded", late["amount"])
    assert donations[pending["id"]] == ("succeeded", 0)
    planted = [charges[int(d)] for d in world.dispute_donation]
    assert disputes == {c["id"]: ("won" if k % 2 else "lost") for k, c in enumerate(planted)}

    truth = world.truth.ledger
    months = {truth.gift_month[c["id"]] for c in planted} | {
        datetime.fromtimestamp(charges[int(world.refund_donation[i])]["created"], UTC).strftime("%Y-%m")
        for i in np.nonzero(world.refund_failed)[0]
    }
    for month in sorted(months):
        results = _results(warehouse_url, reconcile_month(warehouse_url, month, actor=ACTOR).run_id)
        # No refund differs (the failed one's money came back on every side); each planted dispute is named.
        assert [key for key in results if key[1] == "refund_mismatch"] == []
        assert {ftid for ftid, cls in results if cls == "dispute"} == set(
            truth.discrepancies_in(month).get("disputed", set())
        )
        for k, charge in enumerate(planted):
            if truth.gift_month[charge["id"]] == month:
                won = k % 2 == 1
                assert results[(charge["id"], "dispute")][3:] == (
                    0 if won else -charge["amount"],
                    {"withdrawn_minor": 0 if won else charge["amount"], "dispute_fee_minor": DISPUTE_FEE,
                     "dispute_movements": 2 if won else 1, "dispute_status": "won" if won else "lost"},
                )  # fmt: skip
