"""Typeform's one stream: the survey form's responses, with the consent its answers give."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cdp.sources import validation as v
from cdp.sources.spec import (
    ACTIVITY,
    LAND_CONSENT,
    SURVEY_LISTING_DEFAULTS,
    SURVEY_REMOVALS,
    StreamSpec,
    VendorPool,
)

# One budget for the three survey and referral tools (each folder names it; the registry checks they agree).
POOL = VendorPool("survey_api", 2, "Typeform, Zigpoll and ReferralHero")


def typeform_answer(ref: str, check: v.Check) -> v.Check:
    """Typeform keeps answers in a list of {field: {ref}, type, <type>: value}; check the one with `ref`."""

    def run(record: Mapping[str, Any]) -> str | None:
        for answer in record.get("answers") or ():
            if isinstance(answer, Mapping) and v.field(answer, "field.ref") == ref:
                kind = answer.get("type")
                if not isinstance(kind, str) or kind not in answer:
                    return v.rejected(f"answer {ref} has no value of its type", kind)
                return check({"answers": {ref: answer[kind]}})
        return None

    return run


SPECS: tuple[StreamSpec, ...] = (
    StreamSpec(
        "typeform", "responses", "core.survey_response", ACTIVITY,
        v.all_of(
            v.required("response_id", "submitted_at", "hidden.learner_id"),
            v.iso_timestamp("submitted_at"),
            typeform_answer("email", v.email("answers.email")),
            typeform_answer("age", v.age("answers.age")),
            typeform_answer("may_contact", v.boolean("answers.may_contact")),
        ),
        ("responses_consent.sql", LAND_CONSENT, "responses.sql", SURVEY_REMOVALS),
        after=("moodle.users",),  # a response names its learner (hidden field learner_id)
        params=SURVEY_LISTING_DEFAULTS,
    ),
)  # fmt: skip
