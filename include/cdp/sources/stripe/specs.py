"""Stripe's streams: charges (donations and their payers), refunds, balance transactions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cdp.sources import validation as v
from cdp.sources.spec import ACTIVITY, RESOLVE_PEOPLE, StreamSpec, VendorPool

POOL = VendorPool("stripe_api", 4, "Stripe: 100 read requests per second in live mode")

STRIPE_REFUND_STATUSES = ("pending", "requires_action", "succeeded", "failed", "canceled")
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


SPECS: tuple[StreamSpec, ...] = (
    StreamSpec(
        "stripe", "charges", "core.donation", ACTIVITY,
        v.all_of(
            v.required("id", "amount", "currency", "created", "metadata.financial_transaction_id"),
            v.amount_minor("amount"),
            v.currency("currency"),
            v.one_of("status", ("succeeded", "pending", "failed")),
            v.email("billing_details.email", optional=True),
            lambda record: None
            if record.get("status") != "succeeded" or record.get("balance_transaction")
            else "missing required field balance_transaction (succeeded charge)",
        ),
        ("charges_people.sql", RESOLVE_PEOPLE, "charges.sql"),
        person_source="stripe.billing",
        params=(("people_update", "fill"),),
        # Its payers resolve against every people source's, which its wave already waits for.
    ),
    StreamSpec(
        "stripe", "refunds", "core.refund", ACTIVITY,
        v.all_of(
            v.required("id", "amount", "charge", "currency", "created", "status"),
            v.amount_minor("amount"),
            v.currency("currency"),
            v.one_of("status", STRIPE_REFUND_STATUSES),
            v.epoch_plausible("created"),
        ),
        ("refunds.sql",),
        after=("stripe.charges",),  # a refund points to its charge
    ),
    StreamSpec(
        "stripe", "balance_transactions", "core.balance_transaction", ACTIVITY,
        v.all_of(
            v.required("id", "amount", "fee", "net", "currency", "created", "type", "status"),
            v.signed_amount_minor("amount"),
            v.amount_minor("fee"),
            v.signed_amount_minor("net"),
            net_of_fee("amount", "fee", "net"),
            v.currency("currency"),
            v.one_of("type", STRIPE_BALANCE_TYPES),
            v.one_of("status", ("available", "pending")),
            v.required_when("source", "type", ("charge", "payment", "refund", "payment_refund")),
            v.epoch_plausible("created"),
        ),
        ("balance_transactions.sql",),
        after=("stripe.charges", "stripe.refunds"),  # its source is a charge or a refund
    ),
)  # fmt: skip
