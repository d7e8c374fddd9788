"""Comparison of candidate pairs into discrete agreement levels.

Levels per feature: -1 missing on either side (no evidence), 0 disagree, then rising
agreement up to the feature's top level (exact). String similarity is computed once per
distinct pair of values with rapidfuzz, which is vectorised C++; recordlinkage's own string
comparisons loop in Python per pair and are too slow for millions of pairs. The same
functions are exposed as recordlinkage `BaseCompareFeature`s for use with `rl.Compare`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from rapidfuzz import fuzz
from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler
from rapidfuzz.process import cpdist
from recordlinkage.base import BaseCompareFeature

from cdp.identity.normalize import Coded, canonical_given_name, map_coded, nickname_partners

MISSING = -1
Scorer = Callable[[list[str], list[str]], np.ndarray]

#: Top level of each feature (levels run 0..top, -1 missing).
FEATURE_LEVELS: dict[str, int] = {
    "given_name": 3,
    "family_name": 3,
    "date_of_birth": 3,
    "street_number": 2,
    "street": 3,
    "address_line2": 3,
    "locality": 3,
    "postcode": 2,
    "region": 1,
    "email": 1,
    "phone": 1,
    "other_id": 1,
}
NAME_FEATURES = ("given_name", "family_name")
#: Features that, when they agree, corroborate a name match (region is too coarse).
CORROBORATING_FEATURES = (
    "date_of_birth",
    "street_number",
    "street",
    "address_line2",
    "locality",
    "postcode",
    "email",
    "phone",
    "other_id",
)


def _jaro_winkler(left: list[str], right: list[str]) -> np.ndarray:
    return cpdist(left, right, scorer=JaroWinkler.normalized_similarity, workers=-1)


def _damerau(left: list[str], right: list[str]) -> np.ndarray:
    return cpdist(left, right, scorer=DamerauLevenshtein.distance, workers=-1)


def _family_similarity(left: list[str], right: list[str]) -> np.ndarray:
    """Best of Jaro-Winkler and token-set ratio, so 'garcia lopez' meets 'garcia'."""
    similarity = _jaro_winkler(left, right)
    several_tokens = np.fromiter(
        (" " in a or " " in b for a, b in zip(left, right, strict=True)), dtype=bool, count=len(left)
    )
    if several_tokens.any():
        rows = np.flatnonzero(several_tokens)
        token_set = (
            cpdist([left[i] for i in rows], [right[i] for i in rows], scorer=fuzz.token_set_ratio, workers=-1)
            / 100.0
        )
        similarity[rows] = np.maximum(similarity[rows], token_set)
    return similarity


@dataclass
class EncodedColumn:
    """A column as integer codes (-1 missing) plus its distinct values, built once per run."""

    codes: np.ndarray
    values: np.ndarray

    @classmethod
    def from_series(cls, series: pd.Series) -> EncodedColumn:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        return cls(codes.astype(np.int64), np.asarray(uniques, dtype=object))


def on_distinct_pairs(
    left: EncodedColumn,
    right: EncodedColumn,
    left_rows: np.ndarray,
    right_rows: np.ndarray,
    scorer: Scorer,
    *,
    fill: float = np.nan,
) -> np.ndarray:
    """Score each distinct (left value, right value) pair once; NaN where either is missing."""
    left_codes, right_codes = left.codes[left_rows], right.codes[right_rows]
    present = (left_codes >= 0) & (right_codes >= 0)
    result = np.full(len(left_rows), fill, dtype=np.float64)
    if not present.any():
        return result
    width = np.int64(len(right.values) + 1)
    pair_keys = left_codes[present] * width + right_codes[present]
    key_index, distinct_keys = pd.factorize(pair_keys)
    left_values = left.values[distinct_keys // width].tolist()
    right_values = right.values[distinct_keys % width].tolist()
    result[present] = np.asarray(scorer(left_values, right_values), dtype=np.float64)[key_index]
    return result


def levels_from_similarity(
    similarity: np.ndarray, exact: np.ndarray, thresholds: tuple[float, ...]
) -> np.ndarray:
    """exact -> top level; then one level per threshold passed (descending); -1 where NaN."""
    top = len(thresholds) + 1
    levels = np.zeros(len(similarity), dtype=np.int8)
    for rank, threshold in enumerate(sorted(thresholds)):
        levels[similarity >= threshold] = rank + 1
    levels[exact] = top
    levels[np.isnan(similarity)] = MISSING
    return levels


def _exact(left: EncodedColumn, right: EncodedColumn, lrows: np.ndarray, rrows: np.ndarray) -> np.ndarray:
    """Exact equality; the two columns must share one encoding (see `encode_pair_sides`)."""
    lc, rc = left.codes[lrows], right.codes[rrows]
    return (lc == rc) & (lc >= 0)


def _missing(left: EncodedColumn, right: EncodedColumn, lrows: np.ndarray, rrows: np.ndarray) -> np.ndarray:
    return (left.codes[lrows] < 0) | (right.codes[rrows] < 0)


def _name_levels(
    encoded: EncodedPeople, a: str, b: str, lrows: np.ndarray, rrows: np.ndarray, given: bool
) -> np.ndarray:
    left, right = encoded.columns[a], encoded.columns[b]
    scorer = _jaro_winkler if given else _family_similarity
    similarity = on_distinct_pairs(left, right, lrows, rrows, scorer)
    exact = _exact(left, right, lrows, rrows)
    if given:
        # Nickname pairs (Bill/William) count as a strong agreement.
        similarity[encoded.nickname_related(left.codes[lrows], right.codes[rrows]) & ~exact] = 0.95
    return levels_from_similarity(similarity, exact, (0.92, 0.80))


def compare_pairs(encoded: EncodedPeople, left_rows: np.ndarray, right_rows: np.ndarray) -> pd.DataFrame:
    """Agreement levels (int8) of every feature for each pair of row positions.

    `encoded` holds every normalised column encoded once over all rows (see `encode_people`).
    """
    lr, rr = left_rows, right_rows
    levels: dict[str, np.ndarray] = {}

    direct_given = _name_levels(encoded, "given_name", "given_name", lr, rr, given=True)
    direct_family = _name_levels(encoded, "family_name", "family_name", lr, rr, given=False)
    # Given and family names written in the other order (family-name-first conventions).
    crossed_given = _name_levels(encoded, "given_name", "family_name", lr, rr, given=False)
    crossed_family = _name_levels(encoded, "family_name", "given_name", lr, rr, given=False)
    crossed_better = (np.minimum(crossed_given, crossed_family) >= 2) & (
        crossed_given.astype(np.int16) + crossed_family > direct_given.astype(np.int16) + direct_family
    )
    levels["given_name"] = np.where(crossed_better, crossed_given, direct_given).astype(np.int8)
    levels["family_name"] = np.where(crossed_better, crossed_family, direct_family).astype(np.int8)

    columns = encoded.columns
    dob = columns["date_of_birth"]
    edits = on_distinct_pairs(dob, dob, lr, rr, _damerau)
    swapped = _exact(columns["dob_unordered"], columns["dob_unordered"], lr, rr)
    dob_levels = np.where(edits <= 2, 1, 0).astype(np.int8)
    dob_levels[(edits <= 1) | swapped] = 2
    dob_levels[edits == 0] = 3
    dob_levels[np.isnan(edits)] = MISSING
    levels["date_of_birth"] = dob_levels

    number = columns["street_number"]
    number_edits = on_distinct_pairs(number, number, lr, rr, _damerau)
    number_levels = np.where(number_edits == 0, 2, np.where(number_edits <= 1, 1, 0)).astype(np.int8)
    number_levels[np.isnan(number_edits)] = MISSING
    levels["street_number"] = number_levels

    for feature in ("street", "address_line2", "locality"):
        column = columns[feature]
        compact = columns[f"{feature}_compact"]  # spaces dropped: "sanf ord place" is a typo
        similarity = on_distinct_pairs(compact, compact, lr, rr, _jaro_winkler)
        levels[feature] = levels_from_similarity(similarity, _exact(column, column, lr, rr), (0.92, 0.80))
    # The two address lines written in the other order (a building name first, the street second).
    street, line2 = columns["street_compact"], columns["address_line2_compact"]
    crossed = [
        levels_from_similarity(similarity, similarity == 1.0, (0.92, 0.80))
        for similarity in (
            on_distinct_pairs(street, line2, lr, rr, _jaro_winkler),
            on_distinct_pairs(line2, street, lr, rr, _jaro_winkler),
        )
    ]
    direct = levels["street"].astype(np.int16) + levels["address_line2"]
    crossed_better = (np.minimum(*crossed) >= 2) & (crossed[0].astype(np.int16) + crossed[1] > direct)
    levels["street"] = np.where(crossed_better, crossed[0], levels["street"]).astype(np.int8)
    levels["address_line2"] = np.where(crossed_better, crossed[1], levels["address_line2"]).astype(np.int8)

    postcode = columns["postcode"]
    postcode_edits = on_distinct_pairs(postcode, postcode, lr, rr, _damerau)
    postcode_levels = np.where(postcode_edits == 0, 2, np.where(postcode_edits <= 1, 1, 0)).astype(np.int8)
    postcode_levels[np.isnan(postcode_edits)] = MISSING
    levels["postcode"] = postcode_levels

    for feature in ("region", "email", "phone", "other_id"):
        column = columns[feature]
        exact_levels = _exact(column, column, lr, rr).astype(np.int8)
        exact_levels[_missing(column, column, lr, rr)] = MISSING
        levels[feature] = exact_levels
    return pd.DataFrame(levels)


ENCODED_COLUMNS: tuple[str, ...] = (
    "given_name",
    "family_name",
    "date_of_birth",
    "dob_unordered",
    "street_number",
    "street",
    "address_line2",
    "locality",
    "postcode",
    "region",
    "email",
    "phone",
    "other_id",
)


@dataclass
class EncodedPeople:
    """Every compared column encoded once over all rows, plus nickname lookups by name code.

    Given and family names share one encoding so crossed comparisons (given vs family)
    see equal values as equal codes.
    """

    columns: dict[str, EncodedColumn]
    name_canonical: np.ndarray
    nickname_pair_keys: np.ndarray

    def nickname_related(self, left_codes: np.ndarray, right_codes: np.ndarray) -> np.ndarray:
        present = (left_codes >= 0) & (right_codes >= 0)
        if len(self.name_canonical) == 0:  # no names at all
            return present
        lc, rc = np.where(present, left_codes, 0), np.where(present, right_codes, 0)
        same_canonical = self.name_canonical[lc] == self.name_canonical[rc]
        width = np.int64(len(self.name_canonical))
        listed = np.isin(lc * width + rc, self.nickname_pair_keys)
        return present & (same_canonical | listed)


def encode_people(normalized: pd.DataFrame | Mapping[str, Coded]) -> EncodedPeople:
    """Encode each compared column once per run (from `normalize_people` or `normalize_coded`)."""
    if isinstance(normalized, pd.DataFrame):
        normalized = {column: Coded.from_series(normalized[column]) for column in ENCODED_COLUMNS}
    columns = {
        column: EncodedColumn(normalized[column].codes, normalized[column].values)
        for column in ENCODED_COLUMNS
        if column not in NAME_FEATURES
    }
    for feature in ("street", "address_line2", "locality"):
        compact = map_coded(normalized[feature], lambda value: value.replace(" ", ""))
        columns[f"{feature}_compact"] = EncodedColumn(compact.codes, compact.values)
    given, family = normalized["given_name"], normalized["family_name"]
    # One encoding for both name columns, built from their distinct values.
    remap, uniques = pd.factorize(np.concatenate([given.values, family.values]), use_na_sentinel=True)
    remap, n_given = remap.astype(np.int64), len(given.values)
    values = np.asarray(uniques, dtype=object)
    columns["given_name"] = EncodedColumn(np.append(remap[:n_given], -1)[given.codes], values)
    columns["family_name"] = EncodedColumn(np.append(remap[n_given:], -1)[family.codes], values)

    first_tokens = [value.split(" ", 1)[0] for value in values]
    canonical_codes, _ = pd.factorize(
        pd.Series([canonical_given_name(t) for t in first_tokens], dtype=object)
    )
    code_of_token: dict[str, list[int]] = {}
    for code, token in enumerate(first_tokens):
        code_of_token.setdefault(token, []).append(code)
    keys = [
        left * len(values) + right
        for token, partners in nickname_partners(code_of_token).items()
        for left in code_of_token[token]
        for partner in partners
        for right in code_of_token[partner]
    ]
    return EncodedPeople(
        columns, np.asarray(canonical_codes, dtype=np.int64), np.unique(np.asarray(keys, dtype=np.int64))
    )


class LevelsFeature(BaseCompareFeature):
    """All agreement levels as one recordlinkage feature, for use inside `rl.Compare`.

    Give it the normalised columns (see `normalize_people`) as both left and right labels.
    """

    name = "identity_levels"
    description = "Agreement levels of the identity model (vectorised with rapidfuzz)"

    def __init__(self, label: str | None = None) -> None:
        super().__init__(list(ENCODED_COLUMNS), list(ENCODED_COLUMNS), label=label)

    def _compute_vectorized(self, *columns: pd.Series) -> pd.DataFrame:
        half = len(ENCODED_COLUMNS)
        left = pd.DataFrame(
            {name: col.to_numpy() for name, col in zip(ENCODED_COLUMNS, columns[:half], strict=True)}
        )
        right = pd.DataFrame(
            {name: col.to_numpy() for name, col in zip(ENCODED_COLUMNS, columns[half:], strict=True)}
        )
        both = pd.concat([left, right], ignore_index=True)
        encoded = encode_people(both)
        rows = np.arange(len(left))
        return compare_pairs(encoded, rows, rows + len(left))
