"""Normalisation of people records before blocking and comparison.

Every transformation runs once per distinct value (names, streets and localities
repeat a lot), so a million rows cost seconds, not minutes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from functools import lru_cache

import jellyfish
import numpy as np
import pandas as pd
import phonenumbers
from unidecode import unidecode

from cdp.identity.config import ROLES, ResolveConfig

_NON_ALNUM = re.compile(r"[^a-z0-9, ]+")
_SPACES = re.compile(r"\s+")
_TITLES = frozenset(
    {"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "rev", "jr", "sr", "ii", "iii", "iv"}
)
_STREET_WORDS = {
    "st": "street", "rd": "road", "ave": "avenue", "av": "avenue", "dr": "drive", "ct": "court",
    "cres": "crescent", "cr": "crescent", "pl": "place", "ln": "lane", "tce": "terrace", "hwy": "highway",
    "blvd": "boulevard", "pde": "parade", "cct": "circuit", "cl": "close", "sq": "square",
}  # fmt: skip
# Providers that document that dots and/or "+tag" in the local part reach the same mailbox.
_EMAIL_DOTS_IGNORED = frozenset({"gmail.com", "googlemail.com"})
_EMAIL_PLUS_TAGS = frozenset(
    {"gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "icloud.com", "me.com",
     "mac.com", "fastmail.com", "proton.me", "protonmail.com"}
)  # fmt: skip
_EMAIL_DOMAIN_ALIASES = {"googlemail.com": "gmail.com"}


def map_distinct(values: pd.Series, transform: Callable[[str], str | None]) -> pd.Series:
    """Apply a per-value function once per distinct non-null value."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if len(uniques) == 0:
        return pd.Series([None] * len(values), index=values.index, dtype=object)
    mapped = np.array([transform(str(value)) for value in uniques] + [None], dtype=object)
    return pd.Series(mapped[codes], index=values.index, dtype=object)


def clean_text(value: str) -> str | None:
    """Transliterate to ASCII, lowercase and keep letters, digits, commas and single spaces."""
    text = unidecode(value).lower().replace("'", "").replace("-", " ")
    text = _SPACES.sub(" ", _NON_ALNUM.sub(" ", text)).strip(" ,")
    return text or None


def _clean_name(value: str) -> str | None:
    text = clean_text(value)
    if text is None:
        return None
    tokens = [token for token in text.replace(",", " , ").split() if token not in _TITLES]
    return " ".join(tokens).strip(" ,") or None


@lru_cache(maxsize=1)
def _nickname_canonicals() -> dict[str, str]:
    """Map each nickname to one canonical given name.

    The `nicknames` data is many-to-many (Bill is listed under William and Robert), so we
    prefer established names (three or more nicknames) that look most like the nickname.
    Comparison does not rely on this choice alone: see `nickname_related`.
    """
    from nicknames import NickNamer

    namer = NickNamer()
    nicknames = namer.nickname_lookup

    def preference(name: str, candidate: str) -> float:
        return jellyfish.jaro_winkler_similarity(name, candidate) + 0.02 * len(nicknames.get(candidate, ()))

    canonical: dict[str, str] = {}
    for name in namer.canonical_lookup:
        candidates = namer.canonicals_of(name)
        established = {c for c in candidates if len(nicknames.get(c, ())) >= 3} or candidates
        own = len(nicknames.get(name, ()))
        if own >= 6 or own >= max(len(nicknames.get(c, ())) for c in established):
            continue
        canonical[name] = max(sorted(established), key=lambda c, n=name: preference(n, c))
    # Resolve chains (billy -> bill -> will -> william) so the mapping is idempotent.
    for name in list(canonical):
        target, seen = canonical[name], {name}
        while target in canonical and target not in seen:
            seen.add(target)
            target = canonical[target]
        canonical[name] = target
    return canonical


@lru_cache(maxsize=1)
def _nickname_pairs() -> frozenset[tuple[str, str]]:
    from nicknames import NickNamer

    pairs: set[tuple[str, str]] = set()
    for name, nicks in NickNamer().nickname_lookup.items():
        for nick in nicks:
            pairs.add((name, nick))
            pairs.add((nick, name))
    return frozenset(pairs)


def nickname_partners(names: Collection[str]) -> dict[str, list[str]]:
    """For each of `names`, the other `names` listed as its nickname or as its full name."""
    known = set(names)
    partners: dict[str, list[str]] = {}
    for left, right in _nickname_pairs():
        if left in known and right in known:
            partners.setdefault(left, []).append(right)
    return partners


def nickname_related(left: str, right: str) -> bool:
    """True when one given name is a listed nickname of the other, or both share a canonical."""
    return (left, right) in _nickname_pairs() or canonical_given_name(left) == canonical_given_name(right)


def canonical_given_name(name: str) -> str:
    """William for Bill, Margaret for Peggy; unknown names are returned as they are."""
    return _nickname_canonicals().get(name, name)


def e164_phone(value: str, default_region: str) -> str | None:
    """Phone number in E.164, or None when it cannot be a phone number."""
    try:
        number = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def canonical_email(value: str) -> str | None:
    """Lowercase; drop dots and +tags only where the provider documents they are ignored."""
    text = value.strip().lower()
    local, at, domain = text.rpartition("@")
    if not at or not local or "." not in domain:
        return None
    domain = _EMAIL_DOMAIN_ALIASES.get(domain, domain)
    if domain in _EMAIL_PLUS_TAGS:
        local = local.split("+", 1)[0]
    if domain in _EMAIL_DOTS_IGNORED:
        local = local.replace(".", "")
    return f"{local}@{domain}" if local else None


def _clean_street(value: str) -> str | None:
    text = clean_text(value)
    if text is None:
        return None
    return " ".join(_STREET_WORDS.get(token, token) for token in text.replace(",", " ").split())


def _clean_code(value: str) -> str | None:
    text = re.sub(r"[^0-9A-Za-z]", "", unidecode(value)).upper()
    return text or None


def _clean_date(value: str) -> str | None:
    """YYYYMMDD from ISO, compact or day-first dates; kept even if invalid (typos still compare)."""
    text = value.strip()
    parts = re.split(r"[^0-9]+", text)
    parts = [part for part in parts if part]
    if len(parts) == 1:
        digits = parts[0]
        if len(digits) == 8:
            return digits
        if len(digits) == 10 and digits.endswith("00"):  # float-read CSV columns
            return digits[:8]
        return None
    if len(parts) == 3:
        if len(parts[0]) == 4:
            year, month, day = parts
        elif len(parts[2]) == 4:
            day, month, year = parts
        else:
            return None
        return f"{year}{month.zfill(2)}{day.zfill(2)}"
    return None


def _soundex(value: str) -> str | None:
    first = value.split(" ", 1)[0]
    return jellyfish.soundex(first) if first else None


def _split_full_names(given: pd.Series, family: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Split a whole name written in one field; "Family, Given" puts the family name first."""
    given, family = given.copy(), family.copy()
    for source, other, is_given in ((given, family, True), (family, given, False)):
        lone = source.notna() & other.isna()
        if not lone.any():
            continue
        text = source[lone]
        comma = text.str.contains(",", regex=False).to_numpy()
        halves = text.str.partition(",")
        before, after = halves[0].str.strip(), halves[2].str.strip()
        tokens = text.str.replace(",", " ", regex=False).str.split()
        many = (tokens.str.len() >= 2).to_numpy()
        first_part = tokens.str[:-1].str.join(" ")
        last_part = tokens.str[-1]
        new_given = np.where(comma, after, np.where(many, first_part, text if is_given else None))
        new_family = np.where(comma, before, np.where(many, last_part, None if is_given else text))
        given.loc[lone] = new_given
        family.loc[lone] = new_family

    def without_commas(value: str) -> str | None:
        return " ".join(value.replace(",", " ").split()) or None

    return map_distinct(given, without_commas), map_distinct(family, without_commas)


def _column(people: pd.DataFrame, role: str) -> pd.Series:
    if role in people.columns:
        return people[role].astype(object)
    return pd.Series([None] * len(people), index=people.index, dtype=object)


def map_distinct_pairs(
    first: pd.Series, second: pd.Series, transform: Callable[[str | None, str | None], str | None]
) -> pd.Series:
    """Like `map_distinct` for a function of two columns (either may be missing)."""
    first_codes, first_values = pd.factorize(first, use_na_sentinel=True)
    second_codes, second_values = pd.factorize(second, use_na_sentinel=True)
    width = len(second_values) + 1
    pair_codes, distinct = pd.factorize(first_codes.astype(np.int64) * width + (second_codes + 1))
    first_of = np.append(np.asarray(first_values, dtype=object), None)
    second_of = np.append(np.asarray(second_values, dtype=object), None)
    mapped = np.array(
        [transform(first_of[code // width], second_of[code % width - 1]) for code in distinct], dtype=object
    )
    return pd.Series(mapped[pair_codes], index=first.index, dtype=object)


def _prefix(length: int) -> Callable[[str], str | None]:
    return lambda value: value[:length] or None


def _sorted_tokens(given: str | None, family: str | None) -> str | None:
    tokens = sorted(set(f"{given or ''} {family or ''}".split()))
    return " ".join(tokens) or None


def _phonetic_pair(given: str | None, family: str | None) -> str | None:
    return " ".join(sorted((given, family))) if given and family else None


def normalize_people(people: pd.DataFrame, config: ResolveConfig | None = None) -> pd.DataFrame:
    """Return one row per person with cleaned values and the derived keys blocking needs.

    Input columns are canonical roles (see `ROLES`); missing roles are treated as empty.
    """
    config = config or ResolveConfig()
    raw = {role: _column(people, role) for role in ROLES if role != "id"}
    out = pd.DataFrame(index=people.index)
    out["id"] = people["id"] if "id" in people.columns else pd.Series(people.index, index=people.index)

    given, family = _split_full_names(
        map_distinct(raw["given_name"], _clean_name), map_distinct(raw["family_name"], _clean_name)
    )
    out["given_name"] = given
    out["family_name"] = family
    out["given_canonical"] = map_distinct(given, lambda g: canonical_given_name(g.split(" ", 1)[0]))
    out["name_tokens"] = map_distinct_pairs(given, family, _sorted_tokens)
    out["given_phonetic"] = map_distinct(out["given_canonical"], _soundex)
    out["family_phonetic"] = map_distinct(family, _soundex)
    out["names_phonetic_unordered"] = map_distinct_pairs(
        out["given_phonetic"], out["family_phonetic"], _phonetic_pair
    )
    out["given_initial"] = map_distinct(given, _prefix(1))
    out["family_initial"] = map_distinct(family, _prefix(1))

    dob = map_distinct(raw["date_of_birth"], _clean_date)
    out["date_of_birth"] = dob
    out["birth_year"] = map_distinct(dob, _prefix(4))
    out["birth_decade"] = map_distinct(dob, _prefix(3))
    out["dob_unordered"] = map_distinct(dob, lambda d: d[:4] + "".join(sorted((d[4:6], d[6:8]))))
    out["dob_unordered_tail"] = map_distinct(out["dob_unordered"], lambda d: d[4:] or None)

    out["email"] = map_distinct(raw["email"], canonical_email)
    out["phone"] = map_distinct(raw["phone"], lambda v: e164_phone(v, config.default_region))
    out["street_number"] = map_distinct(raw["street_number"], _clean_code)
    out["street"] = map_distinct(raw["street"], _clean_street)
    out["street_phonetic"] = map_distinct(out["street"], _soundex)
    out["street_initial"] = map_distinct(out["street"], _prefix(1))
    out["address_line2"] = map_distinct(raw["address_line2"], clean_text)
    out["locality"] = map_distinct(raw["locality"], clean_text)
    out["locality_initial"] = map_distinct(out["locality"], _prefix(1))
    out["postcode"] = map_distinct(raw["postcode"], _clean_code)
    out["postcode_prefix"] = map_distinct(out["postcode"], _prefix(2))
    out["region"] = map_distinct(raw["region"], clean_text)
    out["other_id"] = map_distinct(raw["other_id"], _clean_code)
    return out.reset_index(drop=True)
