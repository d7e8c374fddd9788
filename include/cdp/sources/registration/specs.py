"""The registration form's one stream, fed by webhooks only: people and the consent they give."""

from __future__ import annotations

from cdp.sources import validation as v
from cdp.sources.spec import (
    DEFAULT_POOL,
    LAND_CONSENT,
    PEOPLE_AND_REFERENCE,
    REGISTRATION_CONSENT,
    RESOLVE_PEOPLE,
    StreamSpec,
)

POOL = DEFAULT_POOL  # pushed to us: no vendor API is called, no budget to keep

SPECS: tuple[StreamSpec, ...] = (
    StreamSpec(
        "registration", "submissions", "core.consent", PEOPLE_AND_REFERENCE,
        v.all_of(
            v.required("id", "submitted_at", "first_name", "email"),
            v.email("email"),
            v.iso_timestamp("submitted_at"),
            v.iso_date("date_of_birth"),
            v.boolean("consent.marketing"),
            v.one_of("consent.parental", (None, "", "none", "pending", "verified")),
        ),
        ("submissions_people.sql", RESOLVE_PEOPLE, "submissions_consent.sql", REGISTRATION_CONSENT, LAND_CONSENT),
        person_source="registration.submission",
    ),
)  # fmt: skip
