"""Stripe in the sandbox: the donations (charges, refunds, balance transactions) and the list API.

The gifts themselves (who gave what, when, in which currency; refunds; which gifts the CRM or the ledger
missed) are drawn here, with Stripe's tables, from one random stream: Salesforce and the ledger build
their records from ``world.donation_*`` afterwards.

Stripe (``/stripe``) — https://docs.stripe.com/api/pagination: ``/v1/charges``, ``/v1/refunds``,
``/v1/balance_transactions``; ``limit`` (1..100), ``starting_after``/``ending_before``,
``created[gte|gt|lte|lt]``; newest first; bearer (or basic) key; ``{"error": {...}}`` bodies.
``/v1/events`` (filtered by ``types[]`` and ``created``) and ``/v1/disputes`` serve the changes after
creation that a test or the demo puts in ``world.stripe_events`` (Stripe event objects, e.g. by
``plant_dispute``; none by default: the generated gifts do not change after they are made). Every answer
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
    txn_created = np.concatenate([created, world.refund_created])
    world.add_table(
        Table(
            "stripe",
            "balance_transactions",
            "id",
            "created",
            "created",
            txn_created,
            txn_created.copy(),
            np.concatenate([world.donation_donor, world.donation_donor[world.refund_donation]]),
            world.draw_malformed(
                rng,
                n + n_refunds,
                ("missing_required", "non_numeric_amount", "unknown_currency", "unknown_enum"),
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
    refunded_amount = int(world.donation_amount[i]) if refund >= 0 else 0
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
        "refunded": refund >= 0,
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
    return {
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


def _balance_transaction(world: WorldCore, i: int) -> dict[str, Any]:
    table = world.tables[("stripe", "balance_transactions")]
    reason = MALFORMED_REASONS[int(table.malformed[i])]
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


# ---------------------------------------------------------------- changes after creation
#: Stripe's fee for a dispute, in the charge's currency (https://stripe.com/pricing: 15.00 USD).
DISPUTE_FEE = 1500


def plant_dispute(
    world: WorldCore, donation: int, at: int, *, status: str = "needs_response"
) -> dict[str, Any]:
    """A dispute of one gift's charge, opened at ``at`` (epoch seconds): Stripe withdraws the amount and its
    fee, and says so in a ``charge.dispute.funds_withdrawn`` event (served by ``/v1/events``; the dispute by
    ``/v1/disputes``). Returns the event."""
    charge = _charge(world, donation)
    dispute_id = f"dp_{tag(world.seed, f'dp{donation}', 24)}"
    withdrawal = {
        "id": f"txn_{tag(world.seed, f'dptxn{donation}', 24)}", "object": "balance_transaction",
        "amount": -charge["amount"], "available_on": at, "balance_type": "payments", "created": at,
        "currency": charge["currency"], "description": f"Chargeback withdrawal for {charge['id']}",
        "exchange_rate": None, "fee": DISPUTE_FEE,
        "fee_details": [{"amount": DISPUTE_FEE, "application": None, "currency": charge["currency"],
                         "description": "Dispute fee", "type": "stripe_fee"}],
        "net": -charge["amount"] - DISPUTE_FEE, "reporting_category": "dispute", "source": dispute_id,
        "status": "available", "type": "adjustment",
    }  # fmt: skip
    dispute = {
        "id": dispute_id, "object": "dispute", "amount": charge["amount"], "balance_transactions": [withdrawal],
        "charge": charge["id"], "created": at, "currency": charge["currency"], "evidence": {},
        "evidence_details": {"due_by": at + 7 * DAY, "has_evidence": False, "past_due": False,
                             "submission_count": 0},
        "is_charge_refundable": False, "livemode": False, "metadata": {}, "payment_intent": None,
        "reason": "fraudulent", "status": status,
    }  # fmt: skip
    event = {
        "id": f"evt_{tag(world.seed, f'dpevt{donation}', 24)}", "object": "event", "api_version": "2020-08-27",
        "created": at, "data": {"object": dispute}, "livemode": False, "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None}, "type": "charge.dispute.funds_withdrawn",
    }  # fmt: skip
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
    events: list[dict[str, Any]] = list(getattr(apis.world, "stripe_events", []))
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
