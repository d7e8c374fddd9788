"""The dedupe's guard rules on plain data, without a warehouse: each rule, and what breaking it would let
through (a relative merged, a rejected pair proposed again, a chain merged on the strength of its middle)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from cdp.identity import guards
from cdp.identity.config import MATCH, POSSIBLE_MATCH
from cdp.identity.model import GUARD_SHARED_CONTACT

T0 = datetime(2024, 1, 1)
#: Levels of a pair the engine is sure of: same given name, birth date and street.
CERTAIN = {"given_name": 3, "family_name": 3, "date_of_birth": 3, "street": 3, "email": -1, "phone": -1}


def person(created_days: int = 0, **facts) -> dict:
    return {
        "household_id": None, "email": None, "phone": None, "created_at": T0 + timedelta(days=created_days),
        "is_learner": True, "donor_only": False, "merged_into": None, **facts,
    }  # fmt: skip


def pair(
    low: str, high: str, score: float = 0.999, cls: str = MATCH, guard: str | None = None, **levels
) -> dict:
    return {
        "person_low": low, "person_high": high, "score": score, "match_weight": 10.0, "class": cls,
        "guard": guard, "levels": {**CERTAIN, **levels},
    }  # fmt: skip


def triage(scored, facts, *, known=None, members=None, rejections=None, threshold=0.99) -> guards.Triage:
    return guards.triage_pairs(scored, facts, known or {}, members or {}, rejections or set(), threshold)


# ------------------------------------------------------------------------------------------------ contacts
@pytest.mark.parametrize("shared", ["household_id", "email", "phone"])
def test_a_shared_household_email_or_phone_is_a_shared_contact(shared: str) -> None:
    facts = {"a": person(**{shared: "x"}), "b": person(**{shared: "x"})}
    assert guards.shares_contact(pair("a", "b"), facts)
    facts["b"][shared] = "y"
    assert not guards.shares_contact(pair("a", "b"), facts)


def test_two_missing_contacts_are_not_shared() -> None:
    assert not guards.shares_contact(pair("a", "b"), {"a": person(), "b": person()})


@pytest.mark.parametrize("level", ["email", "phone"])
def test_an_exact_email_or_phone_level_is_a_shared_contact(level: str) -> None:
    assert guards.shares_contact(pair("a", "b", **{level: 1}), {"a": person(), "b": person()})
    assert not guards.shares_contact(pair("a", "b", **{level: 2}), {"a": person(), "b": person()})


def test_relatives_share_a_contact_with_unlike_given_names_and_no_agreeing_birth_date() -> None:
    facts = {"mother": person(email="fam@example.org"), "son": person(email="fam@example.org")}
    assert guards.relatives(pair("mother", "son", given_name=0, date_of_birth=0), facts)
    assert guards.relatives(pair("mother", "son", given_name=0, date_of_birth=-1), facts)
    # A similar given name, an agreeing birth date or no shared contact: not (only) relatives.
    assert not guards.relatives(pair("mother", "son", given_name=1, date_of_birth=0), facts)
    assert not guards.relatives(pair("mother", "son", given_name=0, date_of_birth=1), facts)
    assert not guards.relatives(
        pair("mother", "son", given_name=0, date_of_birth=0), {"mother": person(), "son": person()}
    )


# ------------------------------------------------------------------------------------------------ guards
def test_a_certain_pair_passes_every_guard() -> None:
    assert guards.contact_guard(pair("a", "b"), {"a": person(), "b": person()}) is None


@pytest.mark.parametrize(("given", "dob"), [(1, 3), (3, 1), (3, 0), (0, 3)])
def test_a_shared_contact_with_a_different_given_name_or_birth_date_is_never_automatic(given, dob) -> None:
    facts = {"a": person(phone="+447700900001"), "b": person(phone="+447700900001")}
    assert (
        guards.contact_guard(pair("a", "b", given_name=given, date_of_birth=dob), facts)
        == GUARD_SHARED_CONTACT
    )


def test_a_shared_contact_with_the_same_name_and_birth_date_passes() -> None:
    facts = {"a": person(phone="+447700900001"), "b": person(phone="+447700900001")}
    assert guards.contact_guard(pair("a", "b", given_name=2, date_of_birth=2), facts) is None


def test_a_donor_against_a_learner_on_the_name_alone_is_held_back() -> None:
    facts = {"donor": person(donor_only=True, is_learner=False), "learner": person()}
    name_only = pair("donor", "learner", date_of_birth=-1, street=0, postcode=-1, email=0, phone=-1)
    assert guards.contact_guard(name_only, facts) == guards.GUARD_DONOR_LEARNER_NAME_ONLY
    # Either side may be the donor.
    flipped = {"donor": person(), "learner": person(donor_only=True, is_learner=False)}
    assert guards.contact_guard(name_only, flipped) == guards.GUARD_DONOR_LEARNER_NAME_ONLY
    # Two learners on the name alone are still not certain, but for the weaker reason.
    assert (
        guards.contact_guard(name_only, {"donor": person(), "learner": person()}) == guards.GUARD_CONTACT_ONLY
    )


def test_a_name_and_a_contact_without_birth_date_address_or_id_is_not_certain() -> None:
    levels = {"date_of_birth": -1, "street": 1, "postcode": 1, "email": 3}
    assert (
        guards.contact_guard(pair("a", "b", **levels), {"a": person(), "b": person()})
        == guards.GUARD_CONTACT_ONLY
    )
    for evidence in ("date_of_birth", "street", "postcode", "other_id"):
        strong = pair("a", "b", **{**levels, evidence: 2})
        assert guards.contact_guard(strong, {"a": person(), "b": person()}) is None, evidence


# ------------------------------------------------------------------------------------------------ rejections
def test_a_rejection_holds_for_every_record_merged_into_either_side() -> None:
    members = {"a": {"a2"}, "b": {"b2", "b3"}}
    assert guards.rejected("a", "b", members, {("a2", "b3")})
    assert guards.rejected("b", "a", members, {("a2", "b3")})
    assert not guards.rejected("a", "b", members, {("a2", "c")})
    assert not guards.rejected("a", "b", members, set())
    assert not guards.rejected("a", "b", {}, {("a2", "b3")})


def test_the_older_record_survives_and_ties_go_to_the_lower_id() -> None:
    facts = {"young": person(created_days=5), "old": person(created_days=1)}
    assert guards.survivor_first(facts, "young", "old") == ("old", "young")
    assert guards.survivor_first(facts, "old", "young") == ("old", "young")
    same = {"b": person(), "a": person()}
    assert guards.survivor_first(same, "b", "a") == ("a", "b")


# ------------------------------------------------------------------------------------------------ triage
def test_certain_pairs_merge_and_the_rest_is_queued_with_its_reason() -> None:
    facts = {p: person() for p in "abcdefgh"}
    result = triage(
        [
            pair("a", "b"),
            pair("c", "d", score=0.95),
            pair("e", "f", cls=POSSIBLE_MATCH, score=0.7),
            pair("g", "h", guard="engine_guard"),
        ],
        facts,
    )
    assert [(p["person_low"], p["person_high"]) for p in result.to_merge] == [("a", "b")]
    assert {(p["person_low"], p["guard"]) for p in result.to_queue} == {
        ("c", guards.GUARD_BELOW_AUTO_MERGE),
        ("e", None),
        ("g", "engine_guard"),
    }
    assert (result.guarded, result.rejected, result.relatives) == (2, 0, 0)


def test_pairs_decided_before_are_not_proposed_again() -> None:
    facts = {p: person() for p in "abcdef"}
    known = {
        ("a", "b"): {"status": "rejected", "auto_merge_allowed": True},
        ("c", "d"): {"status": "merged", "auto_merge_allowed": True},
        ("e", "f"): {"status": "approved", "auto_merge_allowed": True},
    }
    result = triage([pair("a", "b"), pair("c", "d"), pair("e", "f")], facts, known=known)
    assert result.to_merge == [] and result.to_queue == []
    assert result.rejected == 1  # only the reviewer's rejection counts as one


def test_a_pair_rejected_through_merged_records_is_not_proposed() -> None:
    facts = {p: person() for p in "ab"}
    result = triage([pair("a", "b")], facts, members={"a": {"a_old"}}, rejections={("a_old", "b")})
    assert (result.to_merge, result.to_queue, result.rejected) == ([], [], 1)


def test_a_merge_that_was_undone_waits_for_a_reviewer() -> None:
    facts = {p: person() for p in "ab"}
    known = {("a", "b"): {"status": "queued", "auto_merge_allowed": False}}
    result = triage([pair("a", "b")], facts, known=known)
    assert result.to_merge == []
    assert [p["guard"] for p in result.to_queue] == [guards.GUARD_UNMERGED]


def test_relatives_are_dropped_not_queued() -> None:
    facts = {"a": person(household_id="h1"), "b": person(household_id="h1")}
    result = triage([pair("a", "b", given_name=0, date_of_birth=0)], facts)
    assert (result.to_merge, result.to_queue, result.relatives) == ([], [], 1)


def test_a_side_merged_meanwhile_is_skipped() -> None:
    facts = {"a": person(merged_into="z"), "b": person()}
    result = triage([pair("a", "b")], facts)
    assert (result.to_merge, result.to_queue, result.rejected) == ([], [], 0)


def test_the_threshold_is_inclusive() -> None:
    facts = {p: person() for p in "ab"}
    assert len(triage([pair("a", "b", score=0.99)], facts).to_merge) == 1
    assert len(triage([pair("a", "b", score=0.9899)], facts).to_merge) == 0


# ------------------------------------------------------------------------------------------------ clusters
def test_a_chain_has_one_survivor_its_oldest_record() -> None:
    facts = {"a": person(1), "b": person(2), "c": person(3), "x": person(0), "y": person(9)}
    survivor_of = guards.cluster_survivors([pair("a", "b"), pair("b", "c"), pair("x", "y")], facts)
    assert survivor_of["a"] == survivor_of["b"] == survivor_of["c"] == "a"
    assert survivor_of["x"] == survivor_of["y"] == "x"
    # b~c is no direct match with the survivor a: the run queues it as transitive instead of merging c
    # into a on the strength of b.
    assert survivor_of["c"] not in ("b", "c")


def test_clusters_join_transitively() -> None:
    clusters = guards.Clusters()
    clusters.union("c", "d")
    clusters.union("a", "b")
    clusters.union("b", "d")
    assert len({clusters.find(p) for p in "abcd"}) == 1
    assert clusters.find("e") == "e"
