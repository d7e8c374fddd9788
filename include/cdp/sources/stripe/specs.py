"""Stripe's streams: charges (donations and their payers), refunds, balance transactions (and disputes).

A field is required here only where Stripe's OpenAPI schema lists it as required and non-nullable for the
object (tests/vendor_material/stripe/spec3.trimmed.json); what Stripe may leave null (a charge's
``balance_transaction``, a refund's ``charge`` or ``status``, a balance transaction's ``source``) is
handled by the stream's SQL, which names what it could not place. Organisation conventions (a metadata key
holding the gift's id) are options of the connection, checked by ``cdp sources check``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cdp.sources import validation as v
from cdp.sources.spec import ACTIVITY, RESOLVE_PEOPLE, StreamSpec, VendorPool

POOL = VendorPool("stripe_api", 4, "Stripe: 100 read requests per second in live mode")

STRIPE_REFUND_STATUSES = ("pending", "requires_action", "succeeded", "failed", "canceled")
# Stripe's schema for the pinned version (spec3.json, dispute.status), and "prevented" that later versions add
# (https://docs.stripe.com/api/disputes/object#dispute_object-status): a status outside these is quarantined.
STRIPE_DISPUTE_STATUSES = (
    "warning_needs_response", "warning_under_review", "warning_closed", "needs_response", "under_review",
    "charge_refunded", "won", "lost", "prevented",
)  # fmt: skip
# https://docs.stripe.com/api/balance_transactions/object#balance_transaction_object-type
STRIPE_BALANCE_TYPES = (
    "adjustment", "advance", "advance_funding", "anticipation_repayment", "application_fee",
    "application_fee_refund", "charge", "climate_order_purchase", "climate_order_refund",
    "connect_collection_transfer", "contribution", "issuing_authorization_hold", "issuing_authorization_release",
    "issuing_dispute", "issuing_transaction", "obligation_outbound", "obligation_reversal_inbound", "payment",
    "payment_failure_refund", "payment_network_reserve_hold", "payment_network_reserve_release",
    "payment_refund", "payment_reversal", "payment_unreconciled", "payout", "payout_cancel", "payout_failure",
    "payout_minimum_balance_hold", "payout_minimum_balance_release", "refund", "refund_failure",
    "reserve_transaction", "reserved_funds", "stripe_fee", "stripe_fx_fee", "tax_fee", "topup",
    "topup_reversal", "transfer", "transfer_cancel", "transfer_failure", "transfer_refund",
)  # fmt: skip


def net_of_fee(amount: str, fee: str, net: str) -> v.Check:
    """Stripe reports net = amount - fee; a record that disagrees with itself is not believed."""

    def check(record: Mapping[str, Any]) -> str | None:
        values = v.field(record, amount), v.field(record, fee), v.field(record, net)
        numbers = all(isinstance(value, int) and not isinstance(value, bool) for value in values)
        if numbers and values[2] != values[0] - values[1]:
            return f"{net} is not {amount} - {fee}"
        return None

    return check


BALANCE_TRANSACTION = v.all_of(
    v.required("id", "amount", "fee", "net", "currency", "created", "type", "status"),
    v.signed_amount_minor("amount"),
    v.amount_minor("fee"),
    v.signed_amount_minor("net"),
    net_of_fee("amount", "fee", "net"),
    v.currency("currency"),
    v.one_of("type", STRIPE_BALANCE_TYPES),
    v.one_of("status", ("available", "pending")),
    v.epoch_plausible("created"),
)  # fmt: skip


def dispute_or(check: v.Check) -> v.Check:
    """The balance transactions stream also receives disputes (listed by /v1/disputes and carried by
    charge.dispute.* events; they land in core.dispute): a dispute is checked as Stripe promises it, and each
    of its balance transactions as any other."""
    dispute = v.all_of(
        v.required("id", "charge", "created", "currency", "amount", "status", "reason"),
        v.amount_minor("amount"),
        v.currency("currency"),
        v.one_of("status", STRIPE_DISPUTE_STATUSES),
        v.epoch_plausible("created"),
        v.each("balance_transactions", check),
    )

    def run(record: Mapping[str, Any]) -> str | None:
        return dispute(record) if record.get("object") == "dispute" else check(record)

    return run


SPECS: tuple[StreamSpec, ...] = (
    StreamSpec(
        "stripe", "charges", "core.donation", ACTIVITY,
        v.all_of(
            v.required("id", "amount", "currency", "created", "status"),
            v.amount_minor("amount"),
            v.currency("currency"),
            v.one_of("status", ("succeeded", "pending", "failed")),
            v.email("billing_details.email", optional=True),
        ),
        ("charges_people.sql", RESOLVE_PEOPLE, "charges.sql"),
        person_source="stripe.billing",
        # ftid_metadata_key: '' keys gifts by charge id; a connection's option overrides it (see __init__).
        params=(("people_update", "fill"), ("ftid_metadata_key", "")),
        # Its payers resolve against every people source's, which its wave already waits for.
    ),
    StreamSpec(
        "stripe", "refunds", "core.refund", ACTIVITY,
        v.all_of(
            v.required("id", "amount", "currency", "created"),
            v.amount_minor("amount"),
            v.currency("currency"),
            v.one_of("status", (*STRIPE_REFUND_STATUSES, None)),
            v.epoch_plausible("created"),
        ),
        ("refunds.sql",),
        after=("stripe.charges",),  # a refund points to its charge
    ),
    StreamSpec(
        "stripe", "balance_transactions", "core.balance_transaction", ACTIVITY,
        dispute_or(BALANCE_TRANSACTION),
        ("balance_transactions.sql",),
        after=("stripe.charges", "stripe.refunds"),  # its source is a charge or a refund
    ),
)  # fmt: skip
