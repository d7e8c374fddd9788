"""Name, email and phone rendering for generated people, including the messy variants.

Variants are what make a duplicate hard to find: a nickname, a typo, given and
family names swapped, another transliteration, a dropped second family name, or
an exact re-upload by a partner organisation.
"""

from __future__ import annotations

import unicodedata

from cdp_sandbox.names import CULTURES

CANONICAL, NICKNAME, TYPO, ORDER_SWAP, TRANSLITERATION, PARTNER_REUPLOAD, DROPPED_SECOND_FAMILY = range(7)
VARIANT_NAMES = (
    "canonical",
    "nickname",
    "typo",
    "order_swap",
    "transliteration",
    "partner_reupload",
    "dropped_second_family_name",
)

_SPECIAL = str.maketrans({"ß": "ss", "Đ": "D", "đ": "d", "'": "", "’": ""})


def ascii_fold(text: str) -> str:
    """Strip accents the way many registration forms and email addresses do."""
    text = text.translate(_SPECIAL)
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


def typo(text: str, salt: int) -> str:
    """One keyboard slip: swap two adjacent letters, drop one, or double one."""
    if len(text) < 3:
        return text + text[-1]
    position = 1 + salt % (len(text) - 2)
    kind = (salt >> 4) % 3
    if kind == 0:
        return text[:position] + text[position + 1] + text[position] + text[position + 2 :]
    if kind == 1:
        return text[:position] + text[position + 1 :]
    return text[:position] + text[position] + text[position:]


def available_variants(culture_index: int, given_index: int, family_index: int) -> list[int]:
    """Which kinds of duplicate are plausible for a person of this culture and name."""
    culture = CULTURES[culture_index]
    kinds = [TYPO]
    if len(culture.given[given_index]) > 1:
        kinds.append(NICKNAME)
    if len(culture.family[family_index]) > 1:
        kinds.append(TRANSLITERATION)
    if culture.family_name_first:
        kinds.append(ORDER_SWAP)
    if culture.two_family_names:
        kinds.append(DROPPED_SECOND_FAMILY)
    return kinds


class NameParts:
    """A person's name as a given variant renders it."""

    __slots__ = ("given", "family", "single", "family_first")

    def __init__(self, given: str, family: str, single: bool, family_first: bool) -> None:
        self.given = given
        self.family = family
        self.single = single
        self.family_first = family_first

    @property
    def full(self) -> str:
        if self.single:
            return self.given
        return f"{self.family} {self.given}" if self.family_first else f"{self.given} {self.family}"


def render_name(
    culture_index: int,
    given_index: int,
    family_index: int,
    family2_index: int,
    single: bool,
    variant: int,
    salt: int,
) -> NameParts:
    culture = CULTURES[culture_index]
    given_spellings = culture.given[given_index]
    family_spellings = culture.family[family_index]
    given = given_spellings[0]
    family = family_spellings[0]
    second = culture.family[family2_index][0] if culture.two_family_names and family2_index >= 0 else ""
    if variant == NICKNAME and len(given_spellings) > 1:
        given = given_spellings[1 + salt % (len(given_spellings) - 1)]
    elif variant == TRANSLITERATION:
        if len(family_spellings) > 1:
            family = family_spellings[1 + salt % (len(family_spellings) - 1)]
        given = ascii_fold(given)
        second = ascii_fold(second)
    elif variant == TYPO:
        if single:
            given = typo(given, salt)
        else:
            family = typo(family, salt)
    elif variant == DROPPED_SECOND_FAMILY:
        second = ""
    if second:
        family = f"{family} {second}"
    if single:
        family = ""
    parts = NameParts(given, family, single, culture.family_name_first)
    if variant == ORDER_SWAP and not single:
        parts.given, parts.family = family, given
    return parts


def email_address(parts: NameParts, number: int, domain_index: int, culture_index: int) -> str:
    culture = CULTURES[culture_index]
    domain = culture.email_domains[domain_index % len(culture.email_domains)]
    given = ascii_fold(parts.given).lower().replace(" ", "").replace("-", "")
    if parts.single or not parts.family:
        local = f"{given}{number}"
    else:
        family = ascii_fold(parts.family.split(" ")[0]).lower().replace("-", "")
        local = f"{given}.{family}{number}" if number % 3 else f"{given[0]}{family}{number}"
    return f"{local}@{domain}"


def phone_number(culture_index: int, digits: int) -> str:
    return f"{CULTURES[culture_index].phone_prefix} {digits // 10000:05d} {digits % 10000:04d}"


def break_email(email: str, salt: int) -> str:
    """A malformed address of the kinds forms let through."""
    options = (
        email.replace("@", "@@"),
        email.replace("@", " at "),
        email.split("@")[0] + "@",
        email.replace(".", ",", 1),
    )
    return options[salt % len(options)]
