"""The legacy exports' validation rules and the fixes that are safe to make without a person.

Pure functions over a row's values (no I/O): which rule a value breaks, and how a fixable breach is fixed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date

from cdp.sources.validation import CURRENCIES
from cdp.text_rules import e164_phone, is_e164, is_email, normalise_email

REQUIRED = {
    "lms_learners": ("learner_id", "first_name", "email", "registered_on"),
    "lms_enrollments": ("enrollment_id", "learner_id", "course_code", "enrolled_on"),
    "crm_contacts": ("contact_id", "last_name", "email"),
    "donors": ("donor_ref", "email", "gift_date", "amount", "currency"),
    "referrals": ("referral_id", "referrer_email", "referred_email", "referred_on"),
}
EMAILS = {
    "lms_learners": ("email",),
    "crm_contacts": ("email",),
    "donors": ("email",),
    "referrals": ("referrer_email", "referred_email"),
}
DATES = {
    "lms_learners": ("date_of_birth", "registered_on"),
    "lms_enrollments": ("enrolled_on",),
    "crm_contacts": ("created_on",),
    "donors": ("gift_date",),
    "referrals": ("referred_on",),
}
PHONES = {"lms_learners": ("phone",), "crm_contacts": ("phone",)}
#: Rules whose breaches the cleanup fixes by itself; every other rule's breaches are queued for people.
FIXABLE_RULES = frozenset({"email_not_normalised", "phone_not_e164", "date_not_iso", "exact_duplicate"})
RULES = (
    "unparseable", "missing_required", "invalid_email", "email_not_normalised", "invalid_date", "date_not_iso",
    "invalid_phone", "phone_not_e164", "invalid_amount", "invalid_currency", "exact_duplicate", "orphan",
    "conflicting_id",
)  # fmt: skip
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SLASHED_YMD = re.compile(r"^(\d{4})/(\d{2})/(\d{2})$")
DOTTED_DMY = re.compile(r"^(\d{2})\.(\d{2})\.(\d{4})$")
AMOUNT = re.compile(r"^\d+(\.\d{1,2})?$")


def blank(value: str | None) -> bool:
    return value is None or value.strip() == ""


def check_email(value: str) -> str | None:
    normalised = normalise_email(value)
    if not is_email(normalised):
        return "invalid_email"
    return "email_not_normalised" if normalised != value else None


def fix_email(value: str) -> str:
    return normalise_email(value)


def _valid_day(year: str, month: str, day: str) -> bool:
    try:
        date(int(year), int(month), int(day))
    except ValueError:
        return False
    return int(year) >= 1900


def check_date(value: str) -> str | None:
    text = value.strip()
    if ISO_DATE.match(text):
        return None if _valid_day(text[:4], text[5:7], text[8:10]) else "invalid_date"
    for pattern, parts in ((SLASHED_YMD, (1, 2, 3)), (DOTTED_DMY, (3, 2, 1))):
        match = pattern.match(text)
        if match:
            year, month, day = (match.group(k) for k in parts)
            return "date_not_iso" if _valid_day(year, month, day) else "invalid_date"
    return "invalid_date"


def fix_date(value: str) -> str:
    text = value.strip()
    match = SLASHED_YMD.match(text)
    if match:
        return f"{match.group(1)}-{match.group(2)}-{match.group(3)}"
    match = DOTTED_DMY.match(text)
    if match:
        return f"{match.group(3)}-{match.group(2)}-{match.group(1)}"
    return text


def check_phone(value: str) -> str | None:
    if is_e164(value):
        return None
    # Only a number written with its country code (a leading +) can be put into E.164 without guessing.
    return "phone_not_e164" if e164_phone(value, None) is not None else "invalid_phone"


def fix_phone(value: str) -> str:
    """The number in E.164 when written with its country code; anything else is left as it is."""
    return e164_phone(value, None) or value


def row_rules(export: str, values: Mapping[str, str]) -> list[tuple[str, str]]:
    """(rule, field) breaches of one parsed row, without the rules that need other rows."""
    breaches: list[tuple[str, str]] = []
    missing = [name for name in REQUIRED[export] if blank(values.get(name))]
    if missing:
        breaches.append(("missing_required", ",".join(missing)))
    for name in EMAILS.get(export, ()):
        if not blank(values[name]):
            rule = check_email(values[name])
            if rule:
                breaches.append((rule, name))
    for name in DATES.get(export, ()):
        if not blank(values[name]):
            rule = check_date(values[name])
            if rule:
                breaches.append((rule, name))
    for name in PHONES.get(export, ()):
        if not blank(values[name]):
            rule = check_phone(values[name])
            if rule:
                breaches.append((rule, name))
    if export == "donors":
        if not blank(values["amount"]) and not AMOUNT.match(values["amount"].strip()):
            breaches.append(("invalid_amount", "amount"))
        if not blank(values["currency"]) and values["currency"].strip() not in CURRENCIES:
            breaches.append(("invalid_currency", "currency"))
    return breaches


def cleaned_values(export: str, values: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    cleaned = dict(values)
    fixes: list[str] = []
    for name in EMAILS.get(export, ()):
        if not blank(cleaned[name]) and check_email(cleaned[name]) == "email_not_normalised":
            cleaned[name] = fix_email(cleaned[name])
            fixes.append(f"email_not_normalised:{name}")
    for name in DATES.get(export, ()):
        if not blank(cleaned[name]) and check_date(cleaned[name]) == "date_not_iso":
            cleaned[name] = fix_date(cleaned[name])
            fixes.append(f"date_not_iso:{name}")
    for name in PHONES.get(export, ()):
        if not blank(cleaned[name]) and check_phone(cleaned[name]) == "phone_not_e164":
            cleaned[name] = fix_phone(cleaned[name])
            fixes.append(f"phone_not_e164:{name}")
    return cleaned, fixes


def review_reason(rule: str, detail: str) -> str:
    return {
        "unparseable": f"row could not be parsed: {detail}",
        "missing_required": f"missing required field(s): {detail}",
        "invalid_email": f"invalid email in {detail}",
        "invalid_date": f"impossible or unreadable date in {detail}",
        "invalid_phone": f"phone in {detail} cannot be put in E.164 without guessing the country",
        "invalid_amount": f"amount in {detail} is not a plain decimal with at most 2 places",
        "invalid_currency": f"unknown currency in {detail}",
        "orphan": "enrollment names a learner the LMS export does not have",
        "conflicting_id": f"CRM contact's LMS learner id conflicts with the LMS export ({detail})",
    }.get(rule, f"{rule}: {detail}")
