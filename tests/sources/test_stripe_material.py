"""Stripe as Stripe describes itself: its own example objects land, and the sandbox answers as its spec says.

The material (tests/vendor_material/stripe/, PROVENANCE.md): Stripe's ``fixtures3.json`` example objects and
its OpenAPI ``spec3.json`` schemas, trimmed. Charges made from Stripe's example charge, varied as real
donation forms make them (``metadata: {}``, no email, PaymentIntent-era attempts, a pending charge, other
currencies), are served by a minimal server that follows Stripe's list protocol and nothing of ours, and go
through the real connector, validation, SQL and ``core``: nothing is quarantined for a field Stripe does not
promise.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
import requests
import stripe_material
from stripe_material import KEY, ConformingStripe, errors, example, list_errors

from cdp.sources import registry
from cdp.sources.base import SourceSettings
from cdp.sources.stripe import API_VERSION, METADATA_KEY_OPTION
from cdp.sync.engine import sync_stream
from cdp.sync.specs import spec_for
from cdp.warehouse import Actor
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer

ACTOR = Actor("pytest")
STREAMS = ("charges", "refunds", "balance_transactions")
BASE = 1_700_000_000  # 2023-11-14: any fixed time Stripe could have answered with


def test_the_pinned_version_is_the_kept_specs_and_stripes_examples_conform_to_it() -> None:
    assert stripe_material.api_version() == API_VERSION
    for kind in ("charge", "refund", "balance_transaction", "dispute", "event", "payment_intent"):
        assert errors(kind, example(kind)) == [], kind
    # The check itself refuses what Stripe's schema does not allow.
    broken = example("charge") | {"amount": "1.00", "status": "exploded"}
    del broken["currency"]
    assert len(errors("charge", broken)) == 3


# ------------------------------------------------------------------- Stripe's examples, varied
def _charges() -> list[dict[str, Any]]:
    """Charges derived from Stripe's example charge, as an ordinary donation form makes them."""
    out = []
    currencies = ("usd", "eur", "gbp", "usd", "jpy", "usd")
    for i in range(24):
        charge = example("charge")
        txn = f"txn_material{i:04d}"
        charge.update(
            id=f"ch_material{i:04d}", created=BASE + i * 3600, amount=500 + 250 * i, amount_captured=500 + 250 * i,
            captured=True, currency=currencies[i % len(currencies)], metadata={}, balance_transaction=txn,
            status="succeeded", paid=True,
        )  # fmt: skip
        charge["billing_details"] = {
            **charge["billing_details"],
            "email": None if i % 3 else f"donor{i}@example.org",
        }
        out.append(charge)
    # PaymentIntent era (the common case today): one intent, a declined attempt, then the charge that succeeded.
    for i, status in enumerate(("failed", "succeeded")):
        charge = example("charge")
        charge.update(
            id=f"ch_material_pi{i}", created=BASE + 100_000 + i, amount=2500, amount_captured=2500 * (i == 1),
            captured=i == 1, currency="usd", metadata={}, payment_intent="pi_material0001", status=status,
            paid=i == 1, balance_transaction=None if status == "failed" else "txn_material_pi1",
            failure_code="card_declined" if status == "failed" else None,
        )  # fmt: skip
        out.append(charge)
    # A bank debit still pending (succeeds days later: issue 16's events work).
    pending = example("charge")
    pending.update(id="ch_material_pending", created=BASE + 200_000, amount=10_000, currency="usd", metadata={},
                   status="pending", paid=False, balance_transaction="txn_material_pending")  # fmt: skip
    out.append(pending)
    return out


def _refunds(charges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for n, charge in enumerate(
        c for c in charges if c["status"] == "succeeded" and c["id"].endswith(("03", "07"))
    ):
        refund = example("refund")
        refund.update(id=f"re_material{n}", charge=charge["id"], amount=charge["amount"] // (1 + n),
                      currency=charge["currency"], created=charge["created"] + 86_400, metadata={},
                      balance_transaction=f"txn_material_re{n}")  # fmt: skip
        out.append(refund)
    return out


def _balance_transactions(charges: list[dict], refunds: list[dict]) -> list[dict[str, Any]]:
    out = []
    for charge in charges:
        if not charge["balance_transaction"]:
            continue
        txn = example("balance_transaction")
        fee = round(charge["amount"] * 0.029) + 30
        txn.update(id=charge["balance_transaction"], source=charge["id"], amount=charge["amount"], fee=fee,
                   net=charge["amount"] - fee, currency=charge["currency"], created=charge["created"],
                   status="pending" if charge["status"] == "pending" else "available")  # fmt: skip
        txn["fee_details"] = [{"amount": fee, "application": None, "currency": charge["currency"],
                               "description": "Stripe processing fees", "type": "stripe_fee"}]  # fmt: skip
        out.append(txn)
    for refund in refunds:
        txn = example("balance_transaction")
        txn.update(id=refund["balance_transaction"], source=refund["id"], amount=-refund["amount"], fee=0,
                   net=-refund["amount"], currency=refund["currency"], created=refund["created"], type="refund",
                   reporting_category="refund", fee_details=[])  # fmt: skip
        out.append(txn)
    return out


@pytest.fixture
def stripe_examples() -> Iterator[ConformingStripe]:
    charges = _charges()
    refunds = _refunds(charges)
    objects = {
        "charges": charges,
        "refunds": refunds,
        "balance_transactions": _balance_transactions(charges, refunds),
    }
    for name, rows in objects.items():  # the served objects are Stripe's shape, as its spec says
        assert (
            list_errors(
                f"/v1/{name}", {"object": "list", "data": rows, "has_more": False, "url": f"/v1/{name}"}
            )
            == []
        )
    with ConformingStripe(objects) as server:
        yield server


def _sync_all(url: str, settings: SourceSettings) -> None:
    for name in STREAMS:
        spec = spec_for("stripe", name)
        stream = registry.stream("stripe", name, settings)
        sync_stream(url, stream, spec, actor=ACTOR, run_id="material", interval_end=datetime.now(UTC))


def test_stripes_own_example_charges_land_with_nothing_quarantined(
    warehouse_url: str, stripe_examples: ConformingStripe
) -> None:
    _sync_all(warehouse_url, SourceSettings(stripe_examples.url, KEY, {"page_size": 5}))
    charges = stripe_examples.objects["charges"]
    refunds = stripe_examples.objects["refunds"]
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("SELECT source, stream, reason FROM ops.quarantine").fetchall() == []
        donations = dict(conn.execute("SELECT source_record_id, financial_transaction_id FROM core.donation"))
        # Keyed by Stripe's own charge id, every charge, the failed PaymentIntent attempt and the pending one too.
        assert donations == {c["id"]: c["id"] for c in charges}
        statuses = dict(conn.execute("SELECT source_record_id, status FROM core.donation"))
        assert statuses["ch_material_pi0"] == "failed" and statuses["ch_material_pending"] == "pending"
        landed_refunds = conn.execute(
            "SELECT source_record_id, financial_transaction_id, amount_minor FROM core.refund ORDER BY 1"
        ).fetchall()
        assert landed_refunds == sorted((r["id"], r["charge"], r["amount"]) for r in refunds)
        traced = conn.execute(
            "SELECT count(*) FILTER (WHERE financial_transaction_id IS NOT NULL), count(*)"
            " FROM core.balance_transaction"
        ).fetchone()
        assert traced == (len(stripe_examples.objects["balance_transactions"]),) * 2
        # The pinned version was asked for, and each run says which.
        versions = conn.execute(
            "SELECT DISTINCT api_version FROM ops.sync_run WHERE source = 'stripe'"
        ).fetchall()
        assert versions == [(API_VERSION,)]
    assert set(stripe_examples.versions) == {API_VERSION}


def test_a_configured_metadata_key_keys_gifts_by_it_and_quarantines_charges_without_it(
    warehouse_url: str, stripe_examples: ConformingStripe
) -> None:
    charges = stripe_examples.objects["charges"]
    for charge in charges[::2]:
        charge["metadata"] = {"gift_id": f"GIFT-{charge['id'][-4:]}"}
    settings = SourceSettings(
        stripe_examples.url, KEY, {METADATA_KEY_OPTION: "gift_id", "stripe_version": "2024-06-20"}
    )
    _sync_all(warehouse_url, settings)
    with psycopg.connect(warehouse_url) as conn:
        donations = dict(conn.execute("SELECT source_record_id, financial_transaction_id FROM core.donation"))
        waiting = dict(
            conn.execute("SELECT source_record_id, reason FROM ops.quarantine WHERE stream = 'charges'")
        )
    assert donations == {c["id"]: c["metadata"]["gift_id"] for c in charges[::2]}
    assert set(waiting) == {c["id"] for c in charges[1::2]}
    assert all(reason.startswith("missing required field metadata.gift_id") for reason in waiting.values())
    assert set(stripe_examples.versions) == {"2024-06-20"}


# ------------------------------------------------------------------- the sandbox, checked against the spec
def test_every_sandbox_stripe_answer_conforms_to_stripes_openapi(tmp_path) -> None:
    world = World(seed=16, learners=300, donations=600, malformed_rate=0.02)
    planted = {name: {str(i) for i in world.truth.malformed("stripe", name)} for name in STREAMS}
    # Changes after creation, as a test or the demo plants them: a refund's update and a dispute.
    refund = next(r for r in world.records("stripe", "refunds") if r["id"] not in planted["refunds"])
    dispute = example("dispute") | {
        "id": "dp_sandbox",
        "charge": refund["charge"],
        "created": refund["created"],
    }
    world.stripe_events = [
        example("event") | {"id": "evt_r", "type": "charge.refund.updated", "created": refund["created"],
                            "data": {"object": refund}},
        example("event") | {"id": "evt_d", "type": "charge.dispute.created", "created": refund["created"] + 1,
                            "data": {"object": dispute}},
    ]  # fmt: skip
    with SandboxServer(world, ledger_folder=tmp_path / "ledger") as sandbox:
        settings = sandbox.settings("stripe")
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {settings.credential}"
        for name in STREAMS:
            params: dict[str, Any] = {"limit": 100}
            checked = 0
            while True:
                body = session.get(f"{settings.base_url}/v1/{name}", params=params, timeout=30).json()
                # The generator's planted faults break the schema on purpose; everything else must conform.
                kept = {**body, "data": [r for r in body["data"] if r.get("id") not in planted[name]]}
                assert list_errors(f"/v1/{name}", kept) == [], name
                checked += len(kept["data"])
                if not body["has_more"]:
                    break
                params["starting_after"] = body["data"][-1]["id"]
            assert checked == world.truth.expected_count("stripe", name) - len(planted[name]) > 0
        events = session.get(
            f"{settings.base_url}/v1/events", params={"types[]": ["charge.dispute.created"]}, timeout=30
        ).json()
        assert list_errors("/v1/events", events) == [] and [e["id"] for e in events["data"]] == ["evt_d"]
        disputes = session.get(f"{settings.base_url}/v1/disputes", timeout=30).json()
        assert list_errors("/v1/disputes", disputes) == [] and [d["id"] for d in disputes["data"]] == [
            "dp_sandbox"
        ]
        # Stripe's error body, as its spec declares it.
        refused = requests.get(
            f"{settings.base_url}/v1/charges", headers={"Authorization": "Bearer sk_bad"}, timeout=30
        )
        assert refused.status_code == 401 and errors("error", refused.json()) == []
