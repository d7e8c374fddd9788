"""SurveyMonkey's streams: the address book's contacts (people, with the consent kept on them) and the
survey's responses (linked to the contact by the email collector's recipient).

Validation asks only for what SurveyMonkey's reference promises (tests/vendor_material/surveymonkey/); the
consent answer is an organisation's convention (a contact custom field, ``extra["consent_field"]``), so its
values are ours: see ``CONSENT_ANSWERS`` and SETUP.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from cdp.sources import validation as v
from cdp.sources.spec import (
    ACTIVITY,
    LAND_CONSENT,
    PEOPLE_AND_REFERENCE,
    RESOLVE_PEOPLE,
    SURVEY_LISTING_DEFAULTS,
    SURVEY_REMOVALS,
    StreamSpec,
    VendorPool,
)

POOL = VendorPool(
    "surveymonkey_api", 1, "SurveyMonkey: private apps may make 120 requests a minute, 500 a day"
)

# What the consent custom field may hold (trimmed, any case), and what each answer states. Empty: no
# statement. Anything else is kept in quarantine with the value named: a typo is never read as consent.
# Keep in step with the CASE in sql/contacts_consent.sql.
CONSENT_ANSWERS: Mapping[str, str] = {
    **dict.fromkeys(("yes", "y", "true", "1", "given", "granted", "opted in", "opt-in"), "given"),
    **dict.fromkeys(("no", "n", "false", "0", "refused", "declined", "opted out", "opt-out"), "refused"),
    "withdrawn": "withdrawn",
}


def consent_answer(record: Mapping[str, Any]) -> str | None:
    """The configured consent custom field holds a known answer, or nothing."""
    field_id = v.field(record, "consent_field.id")
    if field_id in (None, ""):
        return "missing required field consent_field.id"
    value = (record.get("custom_fields") or {}).get(str(field_id))
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if not isinstance(value, str) or value.strip().lower() not in CONSENT_ANSWERS:
        label = v.field(record, "consent_field.label")
        return v.rejected(f"unknown consent answer in custom field {field_id} ({label})", value)
    return None


def sm_date(path: str) -> v.Check:
    """A SurveyMonkey date string (YYYY-MM-DDTHH:MM:SS+HH:MM, UTC when without offset), not in the future.
    No lower bound: the vendor's own documented response is dated 1970-01-17."""

    def check(record: Mapping[str, Any]) -> str | None:
        value = v.field(record, path)
        if value in (None, ""):
            return f"missing required field {path}"
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return v.rejected(f"impossible date in {path}", value)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        if moment > datetime.now(UTC) + timedelta(days=1):
            return v.rejected(f"impossible date in {path}", value)
        return None

    return check


SPECS: tuple[StreamSpec, ...] = (
    StreamSpec(
        "surveymonkey", "contacts", "core.person", PEOPLE_AND_REFERENCE,
        v.all_of(
            v.required("id"),
            v.email("email", optional=True),  # "Yes if no phone_number": an SMS-only contact has none
            v.one_of("list_status", ("active", "optout")),
            consent_answer,
        ),
        ("contacts_people.sql", RESOLVE_PEOPLE, "contacts_consent.sql", LAND_CONSENT, "contacts_link.sql"),
        person_source="surveymonkey.contact",
        # A contact is a person the LMS or CRM may know already: resolve against them, never before them.
        params=(("people_update", "fill"),),
        after=("moodle.users", "salesforce.Contact"),
    ),
    StreamSpec(
        "surveymonkey", "responses", "core.survey_response", ACTIVITY,
        v.all_of(
            v.required("id", "survey_id", "date_modified", "response_status"),
            sm_date("date_created"),
            sm_date("date_modified"),
            v.one_of("response_status", ("completed", "partial", "overquota", "disqualified")),
        ),
        ("responses.sql", SURVEY_REMOVALS),
        after=("surveymonkey.contacts",),  # a response is linked to its contact by the recipient's email
        params=SURVEY_LISTING_DEFAULTS,
    ),
)  # fmt: skip
