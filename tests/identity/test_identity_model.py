"""The Fellegi-Sunter model: m learned pass by pass, and term-frequency adjustments of names."""

import numpy as np
import pandas as pd

from cdp.identity.blocking import blocked_features, candidate_pairs, pass_members
from cdp.identity.compare import FEATURE_LEVELS, compare_pairs, encode_people
from cdp.identity.config import DEFAULT_BLOCKING_PASSES, BlockingPass, ResolveConfig
from cdp.identity.model import FellegiSunterModel, fit, fit_by_pass, score, term_frequency_adjustments
from cdp.identity.normalize import normalize_coded

#: Chance agreement per level, as estimated on 1M generated people.
U = {
    "given_name": [0.988, 0.0053, 0.0021, 0.0040],
    "family_name": [0.993, 0.0024, 0.0005, 0.0041],
    "date_of_birth": [0.985, 0.0139, 0.0011, 0.00003],
    "street_number": [0.803, 0.187, 0.010],
    "street": [0.988, 0.0112, 0.0002, 0.0006],
    "address_line2": [0.997, 0.002, 0.0003, 0.0007],
    "locality": [0.996, 0.0023, 0.0003, 0.0011],
    "postcode": [0.9865, 0.0125, 0.0010],
    "region": [0.77, 0.23],
    "email": [0.5, 0.5],
    "phone": [0.5, 0.5],
    "other_id": [0.5, 0.5],
}
CHANCE = {feature: np.asarray(levels) / np.sum(levels) for feature, levels in U.items()}
UNUSED = ("email", "phone", "other_id")


def _levels(n: int, rng: np.random.Generator, **fixed: int) -> pd.DataFrame:
    """Pairs that agree exactly on everything (a corrupted field now and then), except `fixed`."""
    columns = {}
    for feature, top in FEATURE_LEVELS.items():
        if feature in UNUSED:
            columns[feature] = np.full(n, -1, dtype=np.int8)
            continue
        column = np.full(n, top, dtype=np.int8)
        column[rng.random(n) < 0.1] = top - 1
        columns[feature] = column
    for feature, level in fixed.items():
        columns[feature] = np.full(n, level, dtype=np.int8)
    return pd.DataFrame(columns)


def test_each_key_names_the_features_it_comes_from():
    by_name = {p.name: p for p in DEFAULT_BLOCKING_PASSES}
    features = set(FEATURE_LEVELS)
    assert blocked_features(by_name["names_phonetic_year"], features) == {
        "given_name",
        "family_name",
        "date_of_birth",
    }
    assert blocked_features(by_name["postcode_number"], features) == {"postcode", "street_number", "street"}
    assert blocked_features(by_name["email"], features) == {"email"}
    # Every key of the default passes is accounted for: a key that maps to nothing would let a pass
    # teach m from the very agreement it was selected on.
    for blocking_pass in DEFAULT_BLOCKING_PASSES:
        for key in blocking_pass.keys:
            assert blocked_features(BlockingPass("one", (key,)), features), key


def test_pass_members_are_the_pairs_agreeing_on_every_key():
    people = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "given_name": ["anna", "anna", "anna", "bert"],
            "family_name": ["berg", "berg", "lund", "berg"],
            "date_of_birth": ["19800101", "19800101", "19800101", "19800101"],
        }
    )
    normalized = normalize_coded(people)
    passes = (
        BlockingPass("dob", ("date_of_birth",)),
        BlockingPass("names", ("given_name", "family_name")),
    )
    left, right, _ = candidate_pairs(normalized, passes, max_block_size=10)
    members = pass_members(normalized, passes, left, right, FEATURE_LEVELS)
    pairs = [frozenset(people["id"].to_numpy()[[a, b]]) for a, b in zip(left, right, strict=True)]
    (dob_mask, dob_blocked), (name_mask, name_blocked) = members
    assert dob_mask.all() and len(pairs) == 6
    assert [pair for pair, inside in zip(pairs, name_mask, strict=True) if inside] == [frozenset("ab")]
    assert dob_blocked == {"date_of_birth"} and name_blocked == {"given_name", "family_name"}


def test_a_feature_is_learned_only_from_passes_that_did_not_block_on_it():
    """Matches found by a family-name pass agree on the family name because of the pass: they must not
    teach that matches agree on it more often than the matches of the other passes show."""
    rng = np.random.default_rng(3)
    by_family = _levels(4000, rng, family_name=3)  # the pass made them agree
    by_address = _levels(4000, rng)
    by_address.loc[: len(by_address) // 2, "family_name"] = 2  # half have a typo in the family name
    strangers = _levels(40000, rng, **{f: 0 for f in FEATURE_LEVELS if f not in (*UNUSED, "family_name")})
    levels = pd.concat([by_family, by_address, strangers], ignore_index=True)
    n_family, n_address = len(by_family), len(by_address)
    in_family_pass = np.r_[np.ones(n_family, bool), np.zeros(n_address, bool), np.ones(len(strangers), bool)]
    in_address_pass = np.r_[
        np.zeros(n_family, bool), np.ones(n_address, bool), np.zeros(len(strangers), bool)
    ]
    members = [
        (in_family_pass, frozenset({"family_name"})),
        (in_address_pass, frozenset({"street", "postcode", "street_number"})),
    ]
    config = ResolveConfig()
    by_pass = fit_by_pass(levels, CHANCE, 10**10, config, members)
    at_once = fit(levels, CHANCE, 10**10, config)
    # Under half of the address pass's matches agree exactly on the family name (half have a typo, and
    # a tenth of the rest another corruption): 0.45. All pairs at once, the family pass lifts it to 0.72.
    assert abs(by_pass.m["family_name"][3] - 0.45) < 0.03, by_pass.m["family_name"]
    assert at_once.m["family_name"][3] > 0.65, at_once.m["family_name"]
    # The strangers agreeing on the family name only stay non-matches; the matches match.
    probability = 1 / (1 + np.exp2(-score(levels, by_pass)))
    assert (probability[n_family + n_address :] < config.possible_match_threshold).all()
    assert (probability[: n_family + n_address] >= config.match_threshold).mean() > 0.99
    expected_matches = n_family + n_address
    assert abs(by_pass.match_rate * len(levels) - expected_matches) < 0.01 * expected_matches


def test_strangers_sharing_a_common_name_score_lower_than_strangers_sharing_a_rare_one():
    common, rare = "smith", "zbigniewski"
    families = [common] * 200 + [rare] * 2 + [f"family{i}" for i in range(798)]
    rng = np.random.default_rng(5)
    people = pd.DataFrame(
        {
            "id": [f"p{i}" for i in range(len(families))],
            "given_name": [f"given{i}" for i in range(len(families))],
            "family_name": families,
            "date_of_birth": [f"19{50 + i % 40}0{1 + i % 9}1{i % 10}" for i in range(len(families))],
            "street_number": rng.integers(1, 300, len(families)).astype(str),
        }
    )
    encoded = encode_people(normalize_coded(people))
    # Two pairs alike in everything but the family name they share: rows 0-1 are smiths, 200-201 the rare.
    left, right = np.array([0, 200]), np.array([1, 201])
    levels = compare_pairs(encoded, left, right)
    assert (levels["family_name"] == FEATURE_LEVELS["family_name"]).all()
    others = [feature for feature in FEATURE_LEVELS if feature != "family_name"]
    levels.loc[1, others] = levels.loc[0, others]  # all else equal
    model = FellegiSunterModel(
        m={f: np.full(top + 1, 1 / (top + 1)) for f, top in FEATURE_LEVELS.items()},
        u={f: np.full(top + 1, 1 / (top + 1)) for f, top in FEATURE_LEVELS.items()},
        match_rate=0.1,
        random_pair_match_rate=1e-4,
        iterations=1,
    )
    adjustment = term_frequency_adjustments(encoded, levels, left, model, ResolveConfig())
    # u of the exact level is 1/4 here; smith is 1 in 5 people (log2(0.25/0.2)), the rare name 1 in 500.
    assert np.allclose(adjustment, [np.log2(0.25 / 0.2), np.log2(0.25 / 0.002)])
    common_weight, rare_weight = score(levels, model, adjustment)
    assert rare_weight - common_weight > 6  # log2(100): a hundred times rarer
