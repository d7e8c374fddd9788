"""ReferralHero's one stream: the referral list's subscribers, who referred them, and their rewards."""

from __future__ import annotations

from cdp.sources import validation as v
from cdp.sources.spec import ACTIVITY, RESOLVE_PEOPLE, StreamSpec, VendorPool

POOL = VendorPool("survey_api", 2, "Typeform, Zigpoll and ReferralHero")  # shared with Typeform, Zigpoll

SPECS: tuple[StreamSpec, ...] = (
    StreamSpec(
        "referralhero", "subscribers", "core.referral", ACTIVITY,
        v.all_of(
            v.required("id", "name", "email", "created_at", "status"),
            v.email("email"),
            v.one_of("status", ("confirmed", "organic", "pending", "unconfirmed")),
            v.epoch_plausible("created_at"),
            v.epoch_plausible("last_updated_at"),
            v.email("referred_by.email", optional=True),
            # unique_clicks and rewards are not in ReferralHero's documented Subscriber object: checked when
            # present (our sandbox and some accounts' exports carry them), never required.
            v.non_negative_int("unique_clicks"),
            v.non_negative_int("people_referred"),
            v.each(
                "rewards",
                v.all_of(
                    v.required("id", "name", "status"),
                    v.one_of("status", ("delivered", "pending", "redeemed", "cancelled")),
                    v.epoch_plausible("created_at"),
                ),
            ),
        ),
        ("subscribers_people.sql", RESOLVE_PEOPLE, "subscribers.sql", "subscribers_removed.sql"),
        person_source="referralhero.subscriber",
        # Stripe's payers and ReferralHero's subscribers both resolve people: who is joined to whom depends
        # on which goes first, so the subscribers always follow the charges.
        after=("stripe.charges",),
    ),
)  # fmt: skip
