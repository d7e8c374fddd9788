"""Unsupervised Fellegi-Sunter model with guard rails.

u (how often non-matches agree by chance) comes from random pairs, m (how often
matches agree) and the match rate come from EM over the blocked candidate pairs: the
same split Splink uses, because EM alone tends to chase whatever correlates inside the
blocks. For the same reason m is learned one blocking pass at a time without the features
that pass blocked on (`fit_by_pass`): over all pairs at once, at 1M generated people EM
drifted after ~15 iterations to a match rate of 1 (every candidate a "match", m the
candidates' own level shares), which made disagreement almost free. EM runs over distinct
agreement patterns with their counts, so its cost does not grow with the number of pairs.
Exact agreement on a name is then re-weighted by how rare the name is (term-frequency
adjustment): two "Smith"s say less than two "Zbigniews".
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cdp.identity.compare import (
    CORROBORATING_FEATURES,
    FEATURE_LEVELS,
    MISSING,
    NAME_FEATURES,
    EncodedPeople,
    compare_pairs,
)
from cdp.identity.config import MATCH, NON_MATCH, POSSIBLE_MATCH, ResolveConfig

log = logging.getLogger(__name__)

GUARD_SHARED_CONTACT = "shared_contact_different_person"
GUARD_NAME_ONLY = "name_only"


@dataclass
class FellegiSunterModel:
    """Parameters of a fitted model; `m` and `u` are per feature, indexed by level."""

    m: dict[str, np.ndarray]
    u: dict[str, np.ndarray]
    #: Share of matches among the blocked candidate pairs (what EM sees).
    match_rate: float
    #: Probability that two random records match: the prior for scoring, consistent with u
    #: coming from random pairs (blocking itself is not counted as evidence).
    random_pair_match_rate: float
    iterations: int

    def weights(self) -> dict[str, np.ndarray]:
        """log2(m/u) per feature and level: the evidence each level carries."""
        return {f: np.log2(self.m[f] / self.u[f]) for f in self.m}


def _level_frequencies(
    levels: pd.DataFrame, weights: np.ndarray | None = None, pseudo: float = 0.5
) -> dict[str, np.ndarray]:
    frequencies = {}
    for feature, top in FEATURE_LEVELS.items():
        column = levels[feature].to_numpy()
        present = column != MISSING
        counts = np.bincount(
            column[present].astype(np.int64),
            weights=None if weights is None else weights[present],
            minlength=top + 1,
        )[: top + 1].astype(np.float64)
        frequencies[feature] = (counts + pseudo) / (counts.sum() + pseudo * (top + 1))
    return frequencies


def sampled_u(encoded: EncodedPeople, n_rows: int, sample_pairs: int, seed: int) -> dict[str, np.ndarray]:
    """Chance agreement from random pairs of distinct records: every level from the sample."""
    rng = np.random.default_rng(seed)
    sample = min(sample_pairs, max(n_rows * (n_rows - 1) // 2, 1))
    left = rng.integers(0, n_rows, sample)
    right = rng.integers(0, n_rows - 1, sample)
    right = right + (right >= left)  # never a record with itself
    return _level_frequencies(compare_pairs(encoded, left, right), pseudo=0.1)


def exact_agreement_rates(encoded: EncodedPeople) -> dict[str, float]:
    """For each feature with two values or more, the share of pairs of distinct records (both values present)
    with equal values.

    Computed from value counts: sum c(c-1) / (n(n-1)), which is what random pairs estimate, without
    sampling error and without comparing any pair."""
    rates = {}
    for feature in FEATURE_LEVELS:
        codes = encoded.columns[feature].codes
        counts = np.bincount(codes[codes >= 0]).astype(np.float64)
        present = counts.sum()
        if present > 1:
            rates[feature] = float((counts * (counts - 1)).sum() / (present * (present - 1)))
    return rates


def estimate_u(encoded: EncodedPeople, n_rows: int, config: ResolveConfig) -> dict[str, np.ndarray]:
    """Chance agreement (u) per feature and level.

    The exact level comes from value frequencies (`exact_agreement_rates`); the lower levels share the
    rest in the proportions seen among `config.u_sample_pairs` random pairs that are not exact. Features
    whose only agreement is exact (email, phone, region, other id) need no sample at all."""
    if not config.u_exact_from_frequencies:
        return sampled_u(encoded, n_rows, config.u_sample_pairs, config.random_seed)
    sampled = sampled_u(encoded, n_rows, config.u_sample_pairs, config.random_seed)
    exact = exact_agreement_rates(encoded)
    u = {}
    for feature, top in FEATURE_LEVELS.items():
        if feature not in exact:  # fewer than two values: nothing to count, the feature never scores
            u[feature] = sampled[feature]
            continue
        rate = min(max(exact[feature], 1e-9), 1 - 1e-9)
        lower = sampled[feature][:top]
        u[feature] = np.r_[(1 - rate) * lower / lower.sum(), rate]
    return u


def _distinct_patterns(levels: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Distinct agreement patterns (levels, one row per pattern) and each pair's pattern index."""
    matrix = levels[list(FEATURE_LEVELS)].to_numpy(dtype=np.int64) + 1  # 0 = missing
    base = 8
    pattern_codes = np.zeros(len(matrix), dtype=np.int64)
    for column in range(matrix.shape[1]):
        pattern_codes = pattern_codes * base + matrix[:, column]
    _, first_row, inverse = np.unique(pattern_codes, return_index=True, return_inverse=True)
    return matrix[first_row] - 1, inverse.reshape(-1)


def _initial_m() -> dict[str, np.ndarray]:
    m = {}
    for feature, top in FEATURE_LEVELS.items():
        start = np.linspace(0.05, 1.0, top + 1) ** 3
        m[feature] = start / start.sum()
    return m


def _posterior(
    patterns: np.ndarray,
    m: dict[str, np.ndarray],
    u: dict[str, np.ndarray],
    match_rate: float,
    used: list[int],
) -> np.ndarray:
    """P(match | pattern) from the features at column indexes `used`."""
    features = list(FEATURE_LEVELS)
    log_match = np.full(len(patterns), np.log(match_rate))
    log_non = np.full(len(patterns), np.log1p(-match_rate))
    for column in used:
        level = patterns[:, column]
        present = level != MISSING
        log_match[present] += np.log(m[features[column]])[level[present]]
        log_non[present] += np.log(u[features[column]])[level[present]]
    return 1.0 / (1.0 + np.exp(np.clip(log_non - log_match, -700, 700)))


def _level_totals(patterns: np.ndarray, weight: np.ndarray, column: int, top: int) -> np.ndarray:
    level = patterns[:, column]
    present = level != MISSING
    return np.bincount(level[present], weights=weight[present], minlength=top + 1)[: top + 1]


def _em(
    patterns: np.ndarray,
    counts: np.ndarray,
    u: dict[str, np.ndarray],
    used: list[int],
    config: ResolveConfig,
) -> tuple[dict[str, np.ndarray], np.ndarray, float, int]:
    """EM for m (features at `used`) and the match rate with u held fixed.

    Returns m, the expected matches per pattern (posterior x count), the match rate and the iterations."""
    features = list(FEATURE_LEVELS)
    m, match_rate = _initial_m(), 0.1
    weight = np.zeros(len(patterns))
    iteration = 0
    for iteration in range(1, config.em_max_iterations + 1):  # noqa: B007
        weight = _posterior(patterns, m, u, match_rate, used) * counts
        new_rate = float(weight.sum() / max(counts.sum(), 1.0))
        new_m = dict(m)
        for column in used:
            feature = features[column]
            top = FEATURE_LEVELS[feature]
            totals = _level_totals(patterns, weight, column, top)
            new_m[feature] = (totals + 1e-3) / (totals.sum() + 1e-3 * (top + 1))
        change = max(float(np.abs(new_m[features[c]] - m[features[c]]).max()) for c in used)
        m, match_rate = new_m, min(max(new_rate, 1e-9), 1 - 1e-9)
        if change < 1e-5:
            break
    return m, weight, match_rate, iteration


def _model(
    m: dict[str, np.ndarray],
    u: dict[str, np.ndarray],
    match_rate: float,
    n_pairs: int,
    comparable_pairs: int,
    iterations: int,
) -> FellegiSunterModel:
    expected_matches = max(match_rate * n_pairs, 1.0)
    random_pair_match_rate = min(expected_matches / max(comparable_pairs, 1), 0.5)
    return FellegiSunterModel(
        m=m, u=u, match_rate=match_rate, random_pair_match_rate=random_pair_match_rate, iterations=iterations
    )


def fit(
    levels: pd.DataFrame, u: dict[str, np.ndarray], comparable_pairs: int, config: ResolveConfig
) -> FellegiSunterModel:
    """EM for m and the match rate with u held fixed, over all candidate pairs at once.

    `comparable_pairs` is how many pairs blocking chose from (n(n-1)/2 when deduping).
    """
    patterns, inverse = _distinct_patterns(levels)
    counts = np.bincount(inverse, minlength=len(patterns)).astype(np.float64)
    m, _, match_rate, iterations = _em(patterns, counts, u, list(range(len(FEATURE_LEVELS))), config)
    log.info(
        "EM converged after %d iterations on %d distinct patterns; estimated match rate in blocks %.4f",
        iterations,
        len(patterns),
        match_rate,
    )
    return _model(m, u, match_rate, len(levels), comparable_pairs, iterations)


def fit_by_pass(
    levels: pd.DataFrame,
    u: dict[str, np.ndarray],
    comparable_pairs: int,
    config: ResolveConfig,
    pass_members: Sequence[tuple[np.ndarray, Collection[str]]],
) -> FellegiSunterModel:
    """m estimated pass by pass, then the match rate over all candidate pairs with m and u fixed.

    `pass_members` holds, per blocking pass, a boolean mask of the candidate pairs that agree on the
    pass's keys and the features those keys come from. Inside a pass, those features agree for
    strangers too, so the pass's EM leaves them out and learns m for the others only; each feature's m
    pools the expected matches of every pass that left it in (as Splink trains m per blocking rule).
    A feature no pass could learn keeps the all-pairs EM's m.
    """
    features = list(FEATURE_LEVELS)
    patterns, inverse = _distinct_patterns(levels)
    all_counts = np.bincount(inverse, minlength=len(patterns)).astype(np.float64)
    fallback, *_ = _em(patterns, all_counts, u, list(range(len(features))), config)
    totals = {feature: np.zeros(top + 1) for feature, top in FEATURE_LEVELS.items()}
    used_passes = 0
    for mask, blocked in pass_members:
        if int(mask.sum()) < config.m_min_pass_pairs:
            continue
        used = [column for column, feature in enumerate(features) if feature not in blocked]
        counts = np.bincount(inverse[mask], minlength=len(patterns)).astype(np.float64)
        seen = counts > 0
        _, weight, pass_rate, iterations = _em(patterns[seen], counts[seen], u, used, config)
        log.debug(
            "m pass %d: %d pairs, match rate %.4f after %d iterations",
            used_passes,
            mask.sum(),
            pass_rate,
            iterations,
        )
        for column in used:
            feature = features[column]
            totals[feature] += _level_totals(patterns[seen], weight, column, FEATURE_LEVELS[feature])
        used_passes += 1
    m = {}
    for feature, top in FEATURE_LEVELS.items():
        learned = totals[feature]
        m[feature] = (
            (learned + 1e-3) / (learned.sum() + 1e-3 * (top + 1))
            if learned.sum() >= 1.0
            else fallback[feature]
        )
    # The match rate among all candidate pairs, with every m and u now fixed.
    match_rate, iteration = 0.1, 0
    everything = list(range(len(features)))
    for iteration in range(1, config.em_max_iterations + 1):  # noqa: B007
        posterior = _posterior(patterns, m, u, match_rate, everything)
        new_rate = min(
            max(float((posterior * all_counts).sum() / max(all_counts.sum(), 1.0)), 1e-9), 1 - 1e-9
        )
        converged = abs(new_rate - match_rate) < 1e-7
        match_rate = new_rate
        if converged:
            break
    log.info(
        "m from %d blocking passes; match rate in blocks %.4f (%d iterations, %d distinct patterns)",
        used_passes,
        match_rate,
        iteration,
        len(patterns),
    )
    return _model(m, u, match_rate, len(levels), comparable_pairs, iteration)


def term_frequency_adjustments(
    encoded: EncodedPeople,
    levels: pd.DataFrame,
    left_rows: np.ndarray,
    model: FellegiSunterModel,
    config: ResolveConfig,
) -> np.ndarray:
    """Extra weight (log2) for exact agreements on rare values, less for common ones."""
    adjustment = np.zeros(len(levels), dtype=np.float64)
    for feature in config.tf_adjusted_features:
        column = encoded.columns[feature]
        present_codes = column.codes[column.codes >= 0]
        if len(present_codes) == 0:
            continue
        frequency = np.bincount(present_codes, minlength=len(column.values)) / len(present_codes)
        top = FEATURE_LEVELS[feature]
        exact = np.flatnonzero(levels[feature].to_numpy() == top)
        if len(exact) == 0:
            continue
        value_frequency = np.maximum(frequency[column.codes[left_rows[exact]]], config.min_term_frequency)
        adjustment[exact] += np.log2(model.u[feature][top] / value_frequency)
    return adjustment


def score(
    levels: pd.DataFrame, model: FellegiSunterModel, tf_adjustment: np.ndarray | None = None
) -> np.ndarray:
    """Match weight (log2 Bayes factor plus prior) of each pair."""
    weights = model.weights()
    prior = model.random_pair_match_rate
    total = np.full(len(levels), np.log2(prior / (1 - prior)))
    for feature in FEATURE_LEVELS:
        level = levels[feature].to_numpy()
        present = level != MISSING
        total[present] += weights[feature][level[present]]
    if tf_adjustment is not None:
        total += tf_adjustment
    return total


def guard_rails(levels: pd.DataFrame) -> pd.Series:
    """Name of the rule that forbids `match` for each pair, or None.

    - shared contact: a family email, phone or household address is shared but the given
      names or birth dates differ: relatives, not one person.
    - name only: nothing but the name agrees (a donor who never enrolled vs a learner).
    """
    given = levels["given_name"].to_numpy()
    dob = levels["date_of_birth"].to_numpy()
    shared_household = (
        (levels["street_number"].to_numpy() == FEATURE_LEVELS["street_number"])
        & (levels["street"].to_numpy() >= 2)
        & (
            (levels["postcode"].to_numpy() == FEATURE_LEVELS["postcode"])
            | (levels["locality"].to_numpy() >= 2)
        )
    )
    shared_contact = (levels["email"].to_numpy() == 1) | (levels["phone"].to_numpy() == 1) | shared_household
    different_person = (given == 0) | (dob == 0)
    corroborated = np.zeros(len(levels), dtype=bool)
    for feature in CORROBORATING_FEATURES:
        top = FEATURE_LEVELS[feature]
        corroborated |= levels[feature].to_numpy() >= (2 if top >= 2 else 1)
    name_agrees = np.zeros(len(levels), dtype=bool)
    for feature in NAME_FEATURES:
        name_agrees |= levels[feature].to_numpy() >= 2
    rule = np.full(len(levels), None, dtype=object)
    rule[name_agrees & ~corroborated] = GUARD_NAME_ONLY
    rule[shared_contact & different_person] = GUARD_SHARED_CONTACT
    return pd.Series(rule, index=levels.index, dtype=object)


def classify(probability: np.ndarray, guard: pd.Series, config: ResolveConfig) -> np.ndarray:
    """Fixed thresholds, then guard rails cap `match` at `possible_match`."""
    classes = np.full(len(probability), NON_MATCH, dtype=object)
    classes[probability >= config.possible_match_threshold] = POSSIBLE_MATCH
    classes[probability >= config.match_threshold] = MATCH
    capped = guard.notna().to_numpy() & (classes == MATCH) & config.apply_guard_rails
    classes[capped] = POSSIBLE_MATCH
    return classes
