"""Stripe in the sandbox: the donations (charges, refunds, balance transactions) and the list API.

The gifts themselves (who gave what, when, in which currency; refunds; which gifts the CRM or the ledger
missed) are drawn here, with Stripe's tables, from one random stream: Salesforce and the ledger build
their records from ``world.donation_*`` afterwards.

Stripe (``/stripe``) — https://docs.stripe.com/api/pagination: ``/v1/charges``, ``/v1/refunds``,
``/v1/balance_transactions``; ``limit`` (1..100), ``starting_after``/``ending_before``,
``created[gte|gt|lte|lt]``; newest first; bearer (or basic) key; ``{"error": {...}}`` bodies.
``/v1/events`` (filtered by ``types[]`` and ``created``) and ``/v1/disputes`` serve the changes after
creation in ``world.stripe_events`` (Stripe event objects): the default world plants a pending charge that
succeeds later, a refund that succeeds a day after its charge and a refund that fails (see "changes after
creation" below); ``World(stripe_disputes=n)`` and ``plant_dispute`` add disputes. Every answer
has the shape of Stripe's OpenAPI spec (checked by tests/sources/test_stripe_material.py).
"""

from __future__ import annotations

import base64
import functools
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from cdp.sources.base import SourceSettings
from cdp_sandbox import people
from cdp_sandbox.apis import Request, Response, VendorApis
from cdp_sandbox.core import WorldCore
from cdp_sandbox.formats import CURRENCIES, CURRENCY_WEIGHTS, DAY, stripe_id, stripe_index, to_epoch
from cdp_sandbox.tables import MALFORMED_REASONS, Table, tag

CREDENTIAL = "sk_test_sandbox51Hq2bLSandboxKey"


def settings(world: WorldCore, base_url: str, ledger_folder: object = None) -> SourceSettings:
    return SourceSettings(f"{base_url}/stripe", world.credentials.for_source("stripe"), {})


def charge_id(world: WorldCore, donation: int) -> str:
    return stripe_id("ch", world.seed_tag("ch"), donation)


# ---------------------------------------------------------------- data
def build(world: WorldCore) -> None:
    """The gifts (``world.donation_*``, ``world.refund_*``, what the CRM and the ledger miss) and Stripe's tables."""
    rng = world.rng(3)
    n_learners = world.learners
    learner_donors = np.nonzero(rng.random(n_learners) < 0.3)[0]
    donor_pool = np.concatenate(
        [learner_donors, np.arange(world.first_donor_only, world.first_partner_contact)]
    )
    n = world.donations
    donor = (
        donor_pool[(rng.random(n) ** 1.5 * donor_pool.shape[0]).astype(np.int64)]
        if donor_pool.shape[0]
        else np.zeros(n, np.int64)
    )
    created = np.sort(world.draw_times(rng, n))
    world.donation_donor = donor.astype(np.int32)
    world.donation_created = created
    cents = np.exp(rng.normal(np.log(4000), 0.9, n)).astype(np.int64)
    world.donation_amount = np.where(
        rng.random(n) < 0.7, np.maximum(100, (cents // 500) * 500), np.maximum(100, cents)
    ).astype(np.int64)
    world.donation_currency = rng.choice(len(CURRENCIES), n, p=np.array(CURRENCY_WEIGHTS)).astype(np.int8)
    world.donation_fee = (np.round(world.donation_amount * 0.029) + 30).astype(np.int64)
    refund_at = created + rng.exponential(7 * DAY, n).astype(np.int64) + 3600
    refunded = (rng.random(n) < 0.03) & (refund_at < world.end_ts)
    _draw_late_refund(world, created, refund_at, refunded)
    world.refund_donation = np.nonzero(refunded)[0]
    world.refund_created = refund_at[world.refund_donation]
    order = np.argsort(world.refund_created, kind="stable")
    world.refund_donation, world.refund_created = world.refund_donation[order], world.refund_created[order]
    world.refund_of_donation = np.full(n, -1, np.int64)
    world.refund_of_donation[world.refund_donation] = np.arange(world.refund_donation.shape[0])
    world.missing_in_crm = rng.random(n) < 0.005
    world.missing_in_ledger = rng.random(n) < 0.003
    world.ledger_amount_typo = (rng.random(n) < 0.002) & ~world.missing_in_ledger
    if world.today is not None:
        _plant_last_months_loss(world, created)

    tags = {label: world.seed_tag(label) for label in ("ch", "re", "txn")}
    world.add_table(
        Table(
            "stripe",
            "charges",
            "id",
            "created",
            "created",
            created,
            created.copy(),
            world.donation_donor,
            world.draw_malformed(
                rng,
                n,
                (
                    "missing_required",
                    "malformed_email",
                    "negative_amount",
                    "non_numeric_amount",
                    "unknown_currency",
                    "unknown_enum",
                ),
            ),
            builder=lambda i: _charge(world, i),
            id_of=lambda i: stripe_id("ch", tags["ch"], i),
            index_of=lambda rid: stripe_index(rid, "ch", tags["ch"]),
        )
    )
    n_refunds = world.refund_donation.shape[0]
    world.add_table(
        Table(
            "stripe",
            "refunds",
            "id",
            "created",
            "created",
            world.refund_created,
            world.refund_created.copy(),
            world.donation_donor[world.refund_donation],
            world.draw_malformed(
                rng,
                n_refunds,
                ("missing_required", "negative_amount", "unknown_currency", "unknown_enum"),
            ),
            builder=lambda i: _refund(world, i),
            id_of=lambda i: stripe_id("re", tags["re"], i),
            index_of=lambda rid: stripe_index(rid, "re", tags["re"]),
        )
    )
    txn_malformed = world.draw_malformed(
        rng, n + n_refunds, ("missing_required", "non_numeric_amount", "unknown_currency", "unknown_enum")
    )
    _plant_late_changes(world, txn_malformed)
    failed = np.nonzero(world.refund_failed)[0]
    txn_created = np.concatenate([created, world.refund_created, world.refund_failed_at[failed]])
    world.add_table(
        Table(
            "stripe",
            "balance_transactions",
            "id",
            "created",
            "created",
            txn_created,
            txn_created.copy(),
            np.concatenate(
                [
                    world.donation_donor,
                    world.donation_donor[world.refund_donation],
                    world.donation_donor[world.refund_donation[failed]],
                ]
            ),
            np.concatenate(
                [
                    txn_malformed,
                    np.zeros(failed.shape[0], np.int8),  # a failed refund's money back: never malformed
                ]
            ),
            builder=lambda i: _balance_transaction(world, i),
            id_of=lambda i: stripe_id("txn", tags["txn"], i),
            index_of=lambda rid: stripe_index(rid, "txn", tags["txn"]),
        )
    )


#: Gifts of the month before the reference day that never reach the ledger or the CRM (the silent loss).
LOST_LAST_MONTH = 3


def _plant_last_months_loss(world: WorldCore, created: np.ndarray) -> None:
    """The seed's silent donation loss, where a newcomer looks first: a few of last month's gifts reached
    Stripe but not the ledger, and as many not the CRM, whatever the draw left there (its own random stream,
    so the rest of the world is as drawn)."""
    present = datetime.fromtimestamp(world.present_ts, UTC)
    first = present.replace(day=1) - timedelta(days=1)
    since, until = to_epoch(first.replace(day=1)), to_epoch(present.replace(day=1))
    last_month = np.nonzero((created >= since) & (created < until))[0]
    if last_month.shape[0] < 2 * LOST_LAST_MONTH:
        return
    rng = world.rng(21)
    picked = rng.choice(last_month, 2 * LOST_LAST_MONTH, replace=False)
    world.missing_in_ledger[picked[:LOST_LAST_MONTH]] = True
    world.ledger_amount_typo[picked[:LOST_LAST_MONTH]] = False
    world.missing_in_crm[picked[LOST_LAST_MONTH:]] = True


def financial_transaction_id(world: WorldCore, donation: int) -> str:
    """The id finance's ledger and the CRM quote for a gift: its Stripe charge id, as the connector keys it
    by default (an ordinary donation form writes no metadata of its own)."""
    return charge_id(world, donation)


def _charge(world: WorldCore, i: int) -> dict[str, Any]:
    table = world.tables[("stripe", "charges")]
    reason = MALFORMED_REASONS[int(table.malformed[i])]
    donor = int(world.donation_donor[i])
    parts = world.name(donor)
    email = world.email(donor)
    if reason == "malformed_email":
        email = people.break_email(email, i)
    amount: Any = int(world.donation_amount[i])
    currency: Any = CURRENCIES[int(world.donation_currency[i])]
    status = "succeeded"
    if reason == "negative_amount":
        amount = -amount
    elif reason == "non_numeric_amount":
        amount = f"{amount / 100:.2f}"
    elif reason == "unknown_currency":
        currency = "xyz"
    elif reason == "unknown_enum":
        status = "exploded"
    charge_id = stripe_id("ch", world.seed_tag("ch"), i)
    refund = int(world.refund_of_donation[i])
    refund_failed = refund >= 0 and bool(world.refund_failed[refund])
    refunded_amount = int(world.donation_amount[i]) if refund >= 0 and not refund_failed else 0
    refunds_data = [_refund(world, refund)] if refund >= 0 else []
    created = int(table.created[i])
    country = world.country_code(donor)
    card_tail = f"{int(world.salt[donor]) % 10000:04d}"
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": refunded_amount,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": stripe_id("txn", world.seed_tag("txn"), i),
        "billing_details": {
            "address": {
                "city": None,
                "country": country,
                "line1": None,
                "line2": None,
                "postal_code": None,
                "state": None,
            },
            "email": email,
            "name": parts.full,
            "phone": None,
            "tax_id": None,
        },
        "calculated_statement_descriptor": "CDP NONPROFIT",
        "captured": True,
        "created": created,
        # A planted "missing required" fault blanks a field Stripe's schema promises (never an optional one).
        "currency": None if reason == "missing_required" else currency,
        "customer": None,
        "description": "Donation",
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "fraud_details": {},
        "livemode": False,
        "metadata": {"campaign": "general"},
        "on_behalf_of": None,
        "outcome": {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "seller_message": "Payment complete.",
            "type": "authorized",
        },
        "paid": True,
        "payment_intent": None,
        "payment_method": f"pm_{tag(world.seed, f'pm{donor}', 24)}",
        "payment_method_details": {
            "card": {
                "amount_authorized": amount,
                "brand": "visa",
                "checks": {
                    "address_line1_check": None,
                    "address_postal_code_check": None,
                    "cvc_check": "pass",
                },
                "country": country,
                "exp_month": 1 + donor % 12,
                "exp_year": 2027 + donor % 5,
                "extended_authorization": {"status": "disabled"},
                "fingerprint": tag(world.seed, f"fp{donor}", 16),
                "funding": "credit",
                "incremental_authorization": {"status": "unavailable"},
                "installments": {"plan": {"count": None, "interval": None, "type": "fixed_count"}},
                "last4": card_tail,
                "mandate": None,
                "multicapture": {"status": "unavailable"},
                "network": "visa",
                "network_token": {"used": False},
                "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
                "three_d_secure": {
                    "authentication_flow": None,
                    "electronic_commerce_indicator": None,
                    "exemption_indicator": None,
                    "result": None,
                    "result_reason": None,
                    "transaction_id": None,
                    "version": None,
                },
                "wallet": {"dynamic_last4": None, "type": "link"},
                "authorization_code": None,
                "regulated_status": None,
                "network_transaction_id": None,
                "transaction_link_id": None,
            },
            "type": "card",
        },
        "receipt_email": email,
        "receipt_number": None,
        "receipt_url": f"https://pay.stripe.com/receipts/payment/{charge_id}",
        "refunded": refund >= 0 and not refund_failed,
        "refunds": {
            "data": refunds_data,
            "has_more": False,
            "object": "list",
            "url": f"/v1/charges/{charge_id}/refunds",
        },
        "review": None,
        "shipping": {},
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": status,
        "transfer_data": {"amount": None, "destination": {"id": "acct_sandbox", "object": "account"}},
        "transfer_group": None,
        "source": {
            "allow_redisplay": None,
            "amount": amount,
            "client_secret": "src_client_secret_sandbox",
            "created": created,
            "currency": currency,
            "flow": "none",
            "id": f"src_{card_tail}",
            "livemode": False,
            "metadata": None,
            "object": "source",
            "owner": {
                "address": {
                    "city": None,
                    "country": country,
                    "line1": None,
                    "line2": None,
                    "postal_code": None,
                    "state": None,
                },
                "email": email,
                "name": parts.full,
                "phone": None,
                "verified_address": {
                    "city": None,
                    "country": None,
                    "line1": None,
                    "line2": None,
                    "postal_code": None,
                    "state": None,
                },
                "verified_email": None,
                "verified_name": None,
                "verified_phone": None,
            },
            "statement_descriptor": None,
            "status": "consumed",
            "type": "card",
            "usage": "single_use",
        },
    }


def _refund(world: WorldCore, r: int) -> dict[str, Any]:
    table = world.tables[("stripe", "refunds")]
    reason = MALFORMED_REASONS[int(table.malformed[r])]
    donation = int(world.refund_donation[r])
    amount: Any = int(world.donation_amount[donation])
    currency: Any = CURRENCIES[int(world.donation_currency[donation])]
    status = "succeeded"
    if reason == "negative_amount":
        amount = -amount
    elif reason == "unknown_currency":
        currency = "xyz"
    elif reason == "unknown_enum":
        status = "vanished"
    failed = bool(world.refund_failed[r])
    if failed:
        status = "failed"
    refund = {
        "id": stripe_id("re", world.seed_tag("re"), r),
        "object": "refund",
        "amount": amount,
        "balance_transaction": stripe_id("txn", world.seed_tag("txn"), world.donations + r),
        "charge": stripe_id("ch", world.seed_tag("ch"), donation),
        "created": int(table.created[r]),
        "currency": None if reason == "missing_required" else currency,
        "destination_details": {"card": {"type": "reversal"}, "type": "card"},
        "metadata": {},
        "payment_intent": None,
        "reason": "requested_by_customer",
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": status,
        "transfer_reversal": None,
        "customer": None,
        "customer_account": None,
        "payment_method": None,
    }
    if failed:  # https://docs.stripe.com/refunds#failed-refunds: the money comes back to the balance
        position = int(np.count_nonzero(world.refund_failed[:r]))
        refund["failure_reason"] = "expired_or_canceled_card"
        refund["failure_balance_transaction"] = stripe_id(
            "txn", world.seed_tag("txn"), world.donations + world.refund_donation.shape[0] + position
        )
    return refund


def _balance_transaction(world: WorldCore, i: int) -> dict[str, Any]:
    table = world.tables[("stripe", "balance_transactions")]
    reason = MALFORMED_REASONS[int(table.malformed[i])]
    if i >= world.donations + world.refund_donation.shape[0]:
        return _refund_failure(world, i)
    is_refund = i >= world.donations
    donation = int(world.refund_donation[i - world.donations]) if is_refund else i
    gross = int(world.donation_amount[donation])
    fee = 0 if is_refund else int(world.donation_fee[donation])
    amount: Any = -gross if is_refund else gross
    currency: Any = CURRENCIES[int(world.donation_currency[donation])]
    kind = "refund" if is_refund else "charge"
    created = int(table.created[i])
    source = (
        stripe_id("re", world.seed_tag("re"), i - world.donations)
        if is_refund
        else stripe_id("ch", world.seed_tag("ch"), donation)
    )
    net = amount - fee
    if reason == "non_numeric_amount":
        amount = str(amount)
    elif reason == "unknown_currency":
        currency = "xyz"
    elif reason == "unknown_enum":
        kind = "mystery"
    return {
        "id": stripe_id("txn", world.seed_tag("txn"), i),
        "object": "balance_transaction",
        "amount": amount,
        "available_on": created + 2 * DAY,
        "created": created,
        "currency": None if reason == "missing_required" else currency,
        "description": "REFUND FOR CHARGE (Donation)" if is_refund else "Donation",
        "exchange_rate": None,
        "fee": fee,
        "fee_details": []
        if is_refund
        else [
            {
                "amount": fee,
                "application": None,
                "currency": currency,
                "description": "Stripe processing fees",
                "type": "stripe_fee",
            }
        ],
        "net": net,
        "reporting_category": kind if kind != "mystery" else "mystery",
        "source": source,
        "status": "available" if created + 2 * DAY < world.end_ts else "pending",
        "type": kind,
        "balance_type": "payments",
    }


def _refund_failure(world: WorldCore, i: int) -> dict[str, Any]:
    """The money of a failed refund back on the balance (type refund_failure, source: the refund)."""
    table = world.tables[("stripe", "balance_transactions")]
    refund = int(np.nonzero(world.refund_failed)[0][i - world.donations - world.refund_donation.shape[0]])
    donation = int(world.refund_donation[refund])
    currency = CURRENCIES[int(world.donation_currency[donation])]
    created = int(table.created[i])
    amount = int(world.donation_amount[donation])
    return {
        "id": stripe_id("txn", world.seed_tag("txn"), i), "object": "balance_transaction", "amount": amount,
        "available_on": created + 2 * DAY, "created": created, "currency": currency,
        "description": "REFUND FAILURE FOR CHARGE (Donation)", "exchange_rate": None, "fee": 0, "fee_details": [],
        "net": amount, "reporting_category": "refund_failure",
        "source": stripe_id("re", world.seed_tag("re"), refund),
        "status": "available" if created + 2 * DAY < world.end_ts else "pending", "type": "refund_failure",
        "balance_type": "payments",
    }  # fmt: skip


# ---------------------------------------------------------------- changes after creation
# The default world plants the changes Stripe reports after an object is made (issue 16), each from its own
# random stream so the rest of the world is as drawn, and each with the events Stripe sends for it (served by
# /v1/events while their time has come): a pending charge that succeeds two days later, a refund that is
# pending when made and succeeds a day after its charge, a refund that fails a day after it was made (its money
# back on the balance, type refund_failure; the charge's amount_refunded back to 0; the ledger never books
# it). Lists answer each object as it is now. Disputes (opened, then won or lost) only with
# ``World(stripe_disputes=n)``: each makes its gift's month a reconciliation difference of class dispute.

#: Stripe's fee for a dispute, in the charge's currency (https://stripe.com/pricing: 15.00 USD).
DISPUTE_FEE = 1500
#: How long before the present a planted change must start, so that it has happened by then.
LATE = 3 * DAY


def _draw_late_refund(
    world: WorldCore, created: np.ndarray, refund_at: np.ndarray, refunded: np.ndarray
) -> None:
    """A refund made an hour after its charge, pending until a day after the charge (its event then)."""
    rng = world.rng(22)
    pool = np.nonzero(refunded & (created < world.present_ts - LATE))[0]
    world.late_refund_donation = int(rng.choice(pool)) if pool.shape[0] else -1
    if world.late_refund_donation >= 0:
        refund_at[world.late_refund_donation] = created[world.late_refund_donation] + 3600


def _fine(world: WorldCore, stream: str, index: int) -> bool:
    return int(world.tables[("stripe", stream)].malformed[index]) == 0


def _plant_late_changes(world: WorldCore, txn_malformed: np.ndarray) -> None:
    rng = world.rng(23)
    n_refunds = world.refund_donation.shape[0]
    world.refund_failed = np.zeros(n_refunds, bool)
    world.refund_failed_at = world.refund_created + DAY
    events: list[dict[str, Any]] = world.__dict__.setdefault("stripe_events", [])
    past = world.present_ts - LATE
    # A refund that fails (not the late one): its charge and the refund well formed.
    late = world.late_refund_donation
    candidates = [
        r for r in range(n_refunds)
        if int(world.refund_donation[r]) != late and world.refund_created[r] + DAY < past
        and _fine(world, "refunds", r) and _fine(world, "charges", int(world.refund_donation[r]))
        and int(txn_malformed[world.donations + r]) == 0
    ]  # fmt: skip
    if candidates:
        failed = int(rng.choice(candidates))
        world.refund_failed[failed] = True
        events.append(_event(world, f"refail{failed}", "charge.refund.updated",
                             int(world.refund_failed_at[failed]), _refund(world, failed)))  # fmt: skip
    # The late refund: pending when made, succeeded a day after its charge.
    if (
        late >= 0
        and _fine(world, "refunds", int(world.refund_of_donation[late]))
        and _fine(world, "charges", late)
    ):
        refund = _refund(world, int(world.refund_of_donation[late]))
        events.append(_event(world, f"republish{late}", "charge.refund.updated",
                             int(world.donation_created[late]) + DAY, refund))  # fmt: skip
    # A charge pending when made (a bank debit), succeeded two days later.
    plain = np.nonzero((world.refund_of_donation < 0) & (world.donation_created < past))[0]
    plain = [int(d) for d in plain if _fine(world, "charges", int(d))]
    world.late_pending_charge = int(rng.choice(plain)) if plain else -1
    if world.late_pending_charge >= 0:
        charge = _charge(world, world.late_pending_charge)
        made = int(charge["created"])
        pending = charge | {"status": "pending", "paid": False,
                            "outcome": charge["outcome"] | {"seller_message": "Payment pending."}}  # fmt: skip
        events.append(_event(world, f"chpend{made}", "charge.pending", made, pending))
        events.append(_event(world, f"chsucc{made}", "charge.succeeded", made + 2 * DAY, charge))
    # Disputes, only when asked for: opened 5 days after the gift, closed 10 days later, every other one won.
    world.dispute_donation = np.zeros(0, np.int64)
    wanted = int(getattr(world, "stripe_disputes", 0) or 0)
    if wanted:
        taken = {late, world.late_pending_charge}
        pool = [
            d
            for d in plain
            if d not in taken and int(world.donation_created[d]) + 15 * DAY < world.present_ts
        ]
        chosen = (
            sorted(int(d) for d in rng.choice(pool, min(wanted, len(pool)), replace=False)) if pool else []
        )
        world.dispute_donation = np.array(chosen, np.int64)
        for k, donation in enumerate(chosen):
            opened = int(world.donation_created[donation]) + 5 * DAY
            plant_dispute(world, donation, opened, status="needs_response")
            plant_dispute(
                world, donation, opened + 10 * DAY, status="won" if k % 2 else "lost", opened=opened
            )


def _event(world: WorldCore, key: str, kind: str, at: int, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"evt_{tag(world.seed, key, 24)}", "object": "event", "api_version": "2020-08-27", "created": at,
        "data": {"object": obj}, "livemode": False, "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None}, "type": kind,
    }  # fmt: skip


def plant_dispute(
    world: WorldCore, donation: int, at: int, *, status: str = "needs_response", opened: int | None = None
) -> dict[str, Any]:
    """A dispute of one gift's charge as it is at ``at`` (epoch seconds), opened at ``opened`` (default: ``at``):
    Stripe withdrew the amount and its fee when it opened, and a won dispute has the amount reinstated at ``at``.
    The event (``charge.dispute.funds_withdrawn`` when it opens, ``charge.dispute.closed`` later) is served by
    ``/v1/events`` and the dispute's latest state by ``/v1/disputes``. Returns the event."""
    opened = at if opened is None else opened
    charge = _charge(world, donation)
    dispute_id = f"dp_{tag(world.seed, f'dp{donation}', 24)}"

    def movement(key: str, when: int, amount: int, fee: int, category: str, what: str) -> dict[str, Any]:
        return {
            "id": f"txn_{tag(world.seed, f'{key}{donation}', 24)}", "object": "balance_transaction",
            "amount": amount, "available_on": when, "balance_type": "payments", "created": when,
            "currency": charge["currency"], "description": f"{what} for {charge['id']}", "exchange_rate": None,
            "fee": fee,
            "fee_details": [{"amount": fee, "application": None, "currency": charge["currency"],
                             "description": "Dispute fee", "type": "stripe_fee"}] if fee else [],
            "net": amount - fee, "reporting_category": category, "source": dispute_id, "status": "available",
            "type": "adjustment",
        }  # fmt: skip

    movements = [
        movement("dptxn", opened, -charge["amount"], DISPUTE_FEE, "dispute", "Chargeback withdrawal")
    ]
    if status == "won":
        movements.append(
            movement("dprtxn", at, charge["amount"], 0, "dispute_reversal", "Chargeback reversal")
        )
    dispute = {
        "id": dispute_id, "object": "dispute", "amount": charge["amount"], "balance_transactions": movements,
        "charge": charge["id"], "created": opened, "currency": charge["currency"], "evidence": {},
        "evidence_details": {"due_by": opened + 7 * DAY, "has_evidence": False, "past_due": False,
                             "submission_count": 0},
        "is_charge_refundable": False, "livemode": False, "metadata": {}, "payment_intent": None,
        "reason": "fraudulent", "status": status,
    }  # fmt: skip
    kind = "charge.dispute.funds_withdrawn" if at == opened else "charge.dispute.closed"
    event = _event(world, f"dpevt{donation}{kind}", kind, at, dispute)
    world.__dict__.setdefault("stripe_events", []).append(event)
    return event


# ---------------------------------------------------------------- the API
def api(apis: VendorApis) -> Callable[[Request], Response]:
    return functools.partial(handle, apis)


STREAMS = {"charges": "charge", "refunds": "refund", "balance_transactions": "balance_transaction"}


def handle(apis: VendorApis, request: Request) -> Response:
    match = re.match(r"^/v1/(charges|refunds|balance_transactions|events|disputes)/?$", request.path)
    stream = match.group(1) if match else None
    request_id = {"Request-Id": f"req_{uuid.uuid4().hex[:14]}"}
    fault_response = apis.request_faults(
        "stripe",
        stream,
        {
            "rate_limit": lambda f: Response(
                429,
                {
                    "error": {
                        "code": "rate_limit",
                        "doc_url": "https://stripe.com/docs/error-codes/rate-limit",
                        "message": "Request rate limit exceeded. Learn more about rate limits here "
                        "https://stripe.com/docs/rate-limits.",
                        "type": "invalid_request_error",
                    }
                },
                {"Retry-After": str(f.retry_after), "Stripe-Should-Retry": "true", **request_id},
            ),
            "server_error": lambda f: Response(
                f.status,
                {"error": {"message": "An unknown error occurred", "type": "api_error"}},
                {"Stripe-Should-Retry": "true", **request_id},
            ),
            "auth_failure": lambda f: _auth_error(apis, request_id),
        },
    )
    if fault_response:
        return fault_response
    key = request.headers.get("authorization", "")
    if key.startswith("Basic "):
        key = "Bearer " + base64.b64decode(key[6:]).decode().split(":")[0]
    if key != f"Bearer {apis.world.credentials.stripe}":
        return _auth_error(apis, request_id, key.removeprefix("Bearer "))
    if not match:
        return Response(
            404,
            {
                "error": {
                    "message": f"Unrecognized request URL (GET: {request.path}).",
                    "type": "invalid_request_error",
                }
            },
            request_id,
        )
    if stream in CHANGE_STREAMS:
        return _changes(apis, request, stream, request_id)
    listing = apis.listing("stripe", stream)
    try:
        limit = int(request.arg("limit", "10"))
    except ValueError:
        limit = -1
    if not 1 <= limit <= 100:
        return Response(
            400,
            {
                "error": {
                    "message": "Invalid integer: limit must be between 1 and 100",
                    "param": "limit",
                    "type": "invalid_request_error",
                }
            },
            request_id,
        )
    try:
        since, until = _stripe_range(request)
    except ValueError as error:
        return Response(
            400,
            {"error": {"message": str(error), "param": "created", "type": "invalid_request_error"}},
            request_id,
        )
    after = None
    descending = True
    cursor_id = request.arg("starting_after") or request.arg("ending_before")
    if cursor_id:
        index = listing.table.index_of(cursor_id)
        if index is None or not 0 <= index < len(listing.table):
            param = "starting_after" if request.arg("starting_after") else "ending_before"
            return Response(
                400,
                {
                    "error": {
                        "code": "resource_missing",
                        "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
                        "message": f"No such {STREAMS[stream]}: '{cursor_id}'",
                        "param": param,
                        "type": "invalid_request_error",
                    }
                },
                request_id,
            )
        after = listing.key(index)
        descending = bool(request.arg("starting_after"))
    rows, more = listing.page(since, until, limit, after=after, descending=descending)
    if not descending:
        rows = rows[::-1]
    return Response(
        200,
        {"object": "list", "data": listing.encoded(rows), "has_more": more, "url": f"/v1/{stream}"},
        request_id,
    )


CHANGE_STREAMS = ("events", "disputes")


def _changes(apis: VendorApis, request: Request, stream: str, headers: dict[str, str]) -> Response:
    """Events (and the disputes they carry) from ``world.stripe_events``, newest first, paged as lists are."""
    horizon = apis.world.horizon()  # an event whose time has not come is not served
    events = [
        e for e in getattr(apis.world, "stripe_events", []) if horizon is None or e["created"] < horizon
    ]
    if stream == "events":
        types = set(request.query.get("types[]", []))
        rows = [e for e in events if not types or e["type"] in types]
    else:
        latest: dict[str, dict[str, Any]] = {}
        for event in sorted(events, key=lambda e: e["created"]):
            if event["data"]["object"].get("object") == "dispute":
                latest[event["data"]["object"]["id"]] = event["data"]["object"]
        rows = list(latest.values())
    try:
        since, until = _stripe_range(request)
        limit = int(request.arg("limit", "10"))
    except ValueError as error:
        return Response(400, {"error": {"message": str(error), "type": "invalid_request_error"}}, headers)
    rows = [
        r
        for r in rows
        if (since is None or r["created"] >= since) and (until is None or r["created"] < until)
    ]
    rows.sort(key=lambda r: (-r["created"], r["id"]))
    after = request.arg("starting_after")
    if after:
        ids = [r["id"] for r in rows]
        rows = rows[ids.index(after) + 1 :] if after in ids else []
    return Response(
        200,
        {"object": "list", "data": rows[:limit], "has_more": len(rows) > limit, "url": f"/v1/{stream}"},
        headers,
    )


def _auth_error(apis: VendorApis, headers: dict[str, str], key: str = "") -> Response:
    shown = f"{key[:8]}{'*' * 4}{key[-4:]}" if len(key) > 12 else "****"
    return Response(
        401,
        {"error": {"message": f"Invalid API Key provided: {shown}", "type": "invalid_request_error"}},
        {"WWW-Authenticate": 'Basic realm="Stripe"', **headers},
    )


def _stripe_range(request: Request) -> tuple[int | None, int | None]:
    since = until = None
    for op in ("gte", "gt", "lte", "lt"):
        raw = request.arg(f"created[{op}]")
        if raw is None:
            continue
        if not raw.lstrip("-").isdigit():
            raise ValueError(f"Invalid integer: {raw}")
        value = int(raw)
        if op == "gte":
            since = value
        elif op == "gt":
            since = value + 1
        elif op == "lt":
            until = value
        else:
            until = value + 1
    plain = request.arg("created")
    if plain is not None and plain.isdigit():
        since, until = int(plain), int(plain) + 1
    return since, until
