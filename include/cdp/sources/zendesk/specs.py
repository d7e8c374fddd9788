"""Zendesk's one stream: support tickets, their requester resolved by exact keys (never a new person)."""

from __future__ import annotations

from cdp.sources import validation as v
from cdp.sources.spec import ACTIVITY, StreamSpec, VendorPool

POOL = VendorPool("zendesk_api", 1, "Zendesk: incremental exports allow 10 requests a minute")

SPECS: tuple[StreamSpec, ...] = (
    StreamSpec(
        "zendesk", "tickets", "core.support_ticket", ACTIVITY,
        v.all_of(
            v.required("id", "created_at", "updated_at", "status", "requester_id", "requester.id"),
            v.iso_timestamp("created_at"),
            v.iso_timestamp("updated_at"),
            v.one_of("status", ("new", "open", "pending", "hold", "solved", "closed", "deleted")),
            v.email("requester.email", optional=True),
        ),
        ("tickets.sql",),
        # A ticket's requester is resolved among the people Stripe's and ReferralHero's streams make (the
        # subscribers follow the charges), and its referral among ReferralHero's.
        after=("referralhero.subscribers",),
    ),
)  # fmt: skip
