"""The package's one rule for an email address and its one phone normaliser.

Every check of a person's email (sync validation, the legacy exports, the referral sheet) and every phone
written in E.164 (identity resolution, the legacy cleanup) goes through here, so a fix is made once.
"""

from __future__ import annotations

import re

import phonenumbers

# Commas and semicolons never appear in an unquoted address (forms let "a,b@x.org" through: a typo).
EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")
E164 = re.compile(r"^\+\d{7,15}$")
_LETTER = re.compile(r"[A-Za-z]")


def is_email(value: str) -> bool:
    """One local part, one @, a domain with a dot; no spaces, commas or semicolons anywhere."""
    return EMAIL.match(value) is not None


def normalise_email(value: str) -> str:
    """The address as stored and compared: trimmed and lower-cased (nothing else is assumed)."""
    return value.strip().lower()


def is_e164(value: str) -> bool:
    return E164.match(value) is not None


def e164_phone(value: str, default_region: str | None) -> str | None:
    """A phone number in E.164, or None when it cannot be one.

    With a default region (ISO 3166 alpha-2) the number is parsed by ``phonenumbers``: a national number
    gets the region's code and the result must be a possible number. Without one nothing is guessed: only
    a number written with its country code (a leading +, 7 to 15 digits, no letters) is taken, digit for
    digit, as the legacy cleanup requires.
    """
    if default_region is None:
        digits = "".join(ch for ch in value if ch.isdigit())
        if value.lstrip("( ").startswith("+") and 7 <= len(digits) <= 15 and not _LETTER.search(value):
            return "+" + digits
        return None
    try:
        number = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
