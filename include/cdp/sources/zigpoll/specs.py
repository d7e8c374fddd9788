"""Zigpoll's streams: participants (with their consent) and their poll responses."""

from __future__ import annotations

from cdp.sources import validation as v
from cdp.sources.spec import ACTIVITY, LAND_CONSENT, StreamSpec, VendorPool

POOL = VendorPool("survey_api", 2, "Typeform, Zigpoll and ReferralHero")  # shared with Typeform, ReferralHero

SPECS: tuple[StreamSpec, ...] = (
    StreamSpec(
        "zigpoll", "participants", "core.consent", ACTIVITY,
        v.all_of(
            v.required("_id", "createdAt", "email", "consent.status", "metadata.moodle_user_id"),
            v.email("email"),
            v.one_of("consent.status", ("granted", "declined", "withdrawn")),
            v.iso_timestamp("createdAt"),
            v.iso_timestamp("consent.collectedAt", optional=True),
        ),
        ("participants.sql", LAND_CONSENT, "participants_link.sql"),
        after=("moodle.users",),  # a participant names its learner (metadata.moodle_user_id)
        # A participant lands as a person key (its consent rows are keyed by statement version, not by it).
        landed_in=("core.person_source_id", "zigpoll.participant"),
    ),
    StreamSpec(
        "zigpoll", "responses", "core.survey_response", ACTIVITY,
        v.all_of(
            v.required("_id", "createdAt", "pollId", "participantId"),
            v.iso_timestamp("createdAt"),
            v.age("metadata.age"),
        ),
        ("responses.sql",),
        after=("zigpoll.participants",),  # a response points to its participant
    ),
)  # fmt: skip
