"""Normalisation of people records before blocking and comparison.

Every transformation runs once per distinct value (names, streets and localities
repeat a lot), so a million rows cost seconds, not minutes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import lru_cache

import jellyfish
import numpy as np
import pandas as pd
from unidecode import unidecode

from cdp.identity.config import ROLES, ResolveConfig
from cdp.text_rules import e164_phone, normalise_email

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


@dataclass(frozen=True)
class Coded:
    """A column as integer codes (-1 missing) into its distinct non-missing values.

    Normalisation works on the distinct values only and carries the codes along, so a million
    rows are hashed once per input column, not once per derived column."""

    codes: np.ndarray
    values: np.ndarray

    @classmethod
    def from_series(cls, series: pd.Series) -> Coded:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        return cls(codes.astype(np.int64), np.asarray(uniques, dtype=object))

    def materialize(self) -> np.ndarray:
        """The values row by row, None where missing."""
        return np.append(self.values, None)[self.codes]


def recode(codes: np.ndarray, values: np.ndarray) -> Coded:
    """Codes into `values` (which may repeat or hold None) as a `Coded` with distinct values."""
    remap, uniques = pd.factorize(values, use_na_sentinel=True)
    remap = np.append(remap.astype(np.int64), -1)  # code -1 (missing) stays missing
    return Coded(remap[codes], np.asarray(uniques, dtype=object))


def map_coded(column: Coded, transform: Callable[[str], str | None]) -> Coded:
    """Apply a per-value function once per distinct value of a coded column."""
    mapped = np.array([transform(str(value)) for value in column.values] + [None], dtype=object)[:-1]
    return recode(column.codes, mapped)


def map_distinct(values: pd.Series, transform: Callable[[str], str | None]) -> pd.Series:
    """Apply a per-value function once per distinct non-null value."""
    mapped = map_coded(Coded.from_series(values), transform)
    return pd.Series(mapped.materialize(), index=values.index, dtype=object)


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


def canonical_email(value: str) -> str | None:
    """Lowercase; drop dots and +tags only where the provider documents they are ignored."""
    text = normalise_email(value)
    # Looser than `cdp.text_rules.is_email` on purpose: a malformed address that is still recognisable
    # ("ana,b@x.org") is compared as it is rather than dropped from the match.
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


def _split_one(text: str, is_given: bool) -> tuple[str | None, str | None]:
    """(given, family) of a whole name written in one field; "Family, Given" puts the family first."""
    if "," in text:
        before, _, after = text.partition(",")
        return after.strip(), before.strip()
    tokens = text.split()
    if len(tokens) >= 2:
        return " ".join(tokens[:-1]), tokens[-1]
    return (text, None) if is_given else (None, text)


def _without_commas(value: str) -> str | None:
    return " ".join(value.replace(",", " ").split()) or None


def _split_full_names(given: Coded, family: Coded) -> tuple[Coded, Coded]:
    """Split a whole name written in one field when the other field is empty (once per distinct value)."""
    given_codes, family_codes = given.codes.copy(), family.codes.copy()
    given_values, family_values = [given.values], [family.values]
    n_given, n_family = len(given.values), len(family.values)
    for source, is_given in ((given, True), (family, False)):
        other = family if is_given else given
        lone = (source.codes >= 0) & (other.codes < 0)
        if not lone.any():
            continue
        distinct, position = np.unique(source.codes[lone], return_inverse=True)
        halves = [_split_one(str(source.values[code]), is_given) for code in distinct]
        given_codes[lone] = n_given + position
        family_codes[lone] = n_family + position
        given_values.append(np.array([half[0] for half in halves] + [None], dtype=object)[:-1])
        family_values.append(np.array([half[1] for half in halves] + [None], dtype=object)[:-1])
        n_given, n_family = n_given + len(distinct), n_family + len(distinct)
    split_given = recode(given_codes, np.concatenate(given_values))
    split_family = recode(family_codes, np.concatenate(family_values))
    return map_coded(split_given, _without_commas), map_coded(split_family, _without_commas)


def _column(people: pd.DataFrame, role: str) -> Coded:
    if role in people.columns:
        return Coded.from_series(people[role])
    return Coded(np.full(len(people), -1, dtype=np.int64), np.empty(0, dtype=object))


def map_distinct_pairs(
    first: pd.Series, second: pd.Series, transform: Callable[[str | None, str | None], str | None]
) -> pd.Series:
    """Like `map_distinct` for a function of two columns (either may be missing)."""
    mapped = map_coded_pairs(Coded.from_series(first), Coded.from_series(second), transform)
    return pd.Series(mapped.materialize(), index=first.index, dtype=object)


def map_coded_pairs(
    first: Coded, second: Coded, transform: Callable[[str | None, str | None], str | None]
) -> Coded:
    """Apply a function of two coded columns once per distinct pair of values (either may be missing)."""
    width = len(second.values) + 1
    pair_codes, distinct = pd.factorize(first.codes * width + (second.codes + 1))
    firsts = np.append(first.values, None)[distinct // width].tolist()
    seconds = np.append(second.values, None)[distinct % width - 1].tolist()
    mapped = np.array([transform(a, b) for a, b in zip(firsts, seconds, strict=True)] + [None], dtype=object)[
        :-1
    ]
    return recode(pair_codes.astype(np.int64), mapped)


def _prefix(length: int) -> Callable[[str], str | None]:
    return lambda value: value[:length] or None


def _sorted_tokens(given: str | None, family: str | None) -> str | None:
    if given and family and " " not in given and " " not in family:  # the common case, without sets
        return given if given == family else f"{given} {family}" if given < family else f"{family} {given}"
    tokens = sorted(set(f"{given or ''} {family or ''}".split()))
    return " ".join(tokens) or None


def _phonetic_pair(given: str | None, family: str | None) -> str | None:
    return " ".join(sorted((given, family))) if given and family else None


def normalize_coded(people: pd.DataFrame, config: ResolveConfig | None = None) -> dict[str, Coded]:
    """Cleaned values and the derived keys blocking needs, each as a `Coded` column (see `normalize_people`)."""
    config = config or ResolveConfig()
    raw = {role: _column(people, role) for role in ROLES if role != "id"}
    out: dict[str, Coded] = {}
    given, family = _split_full_names(
        map_coded(raw["given_name"], _clean_name), map_coded(raw["family_name"], _clean_name)
    )
    out["given_name"] = given
    out["family_name"] = family
    out["given_canonical"] = map_coded(given, lambda g: canonical_given_name(g.split(" ", 1)[0]))
    out["name_tokens"] = map_coded_pairs(given, family, _sorted_tokens)
    out["given_phonetic"] = map_coded(out["given_canonical"], _soundex)
    out["family_phonetic"] = map_coded(family, _soundex)
    out["names_phonetic_unordered"] = map_coded_pairs(
        out["given_phonetic"], out["family_phonetic"], _phonetic_pair
    )
    out["given_initial"] = map_coded(given, _prefix(1))
    out["family_initial"] = map_coded(family, _prefix(1))

    dob = map_coded(raw["date_of_birth"], _clean_date)
    out["date_of_birth"] = dob
    out["birth_year"] = map_coded(dob, _prefix(4))
    out["birth_decade"] = map_coded(dob, _prefix(3))
    out["dob_unordered"] = map_coded(dob, lambda d: d[:4] + "".join(sorted((d[4:6], d[6:8]))))
    out["dob_unordered_tail"] = map_coded(out["dob_unordered"], lambda d: d[4:] or None)

    out["email"] = map_coded(raw["email"], canonical_email)
    out["phone"] = map_coded(raw["phone"], lambda v: e164_phone(v, config.default_region))
    out["street_number"] = map_coded(raw["street_number"], _clean_code)
    out["street"] = map_coded(raw["street"], _clean_street)
    out["street_phonetic"] = map_coded(out["street"], _soundex)
    out["street_initial"] = map_coded(out["street"], _prefix(1))
    out["address_line2"] = map_coded(raw["address_line2"], clean_text)
    out["locality"] = map_coded(raw["locality"], clean_text)
    out["locality_initial"] = map_coded(out["locality"], _prefix(1))
    out["postcode"] = map_coded(raw["postcode"], _clean_code)
    out["postcode_prefix"] = map_coded(out["postcode"], _prefix(2))
    out["region"] = map_coded(raw["region"], clean_text)
    out["other_id"] = map_coded(raw["other_id"], _clean_code)
    return out


def normalize_people(people: pd.DataFrame, config: ResolveConfig | None = None) -> pd.DataFrame:
    """Return one row per person with cleaned values and the derived keys blocking needs.

    Input columns are canonical roles (see `ROLES`); missing roles are treated as empty.
    """
    ids = people["id"].to_numpy() if "id" in people.columns else people.index.to_numpy()
    columns = {"id": ids} | {
        name: column.materialize() for name, column in normalize_coded(people, config).items()
    }
    return pd.DataFrame(columns)
