"""The dedupe's rules on plain data: which scored pairs merge, which wait for a reviewer, which are dropped.

Pure functions over dicts and sets (no connection): the warehouse side (`cdp.identity.runs`) reads the
facts and hands them in, so each rule can be checked without a database.

A pair is a dict with `person_low`, `person_high`, `score`, `class`, `guard` (the engine's) and `levels`
(feature name -> comparison level). The facts of a person are a dict with `household_id`, `email`,
`phone`, `created_at`, `first_identity`, `is_learner`, `donor_only` and `merged_into`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cdp.identity.config import MATCH
from cdp.identity.model import GUARD_SHARED_CONTACT

GUARD_TRANSITIVE = "transitive_only"
GUARD_UNMERGED = "merge_was_undone"
GUARD_DONOR_LEARNER_NAME_ONLY = "donor_vs_learner_name_only"
GUARD_BELOW_AUTO_MERGE = "below_auto_merge_threshold"
GUARD_CONTACT_ONLY = "name_and_contact_only"

#: Evidence other than the name, for the donor-versus-learner rule.
CORROBORATING_LEVELS = ("date_of_birth", "email", "phone", "street", "postcode", "other_id")

Facts = Mapping[str, Mapping[str, Any]]


def low_high(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


class Clusters:
    """Union-find over person ids."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def rejected(a: str, b: str, members: Mapping[str, set[str]], rejections: set[tuple[str, str]]) -> bool:
    """A reviewer said some record of a's merged set is not the same person as some record of b's."""
    if not rejections:
        return False
    side_a = members.get(a, set()) | {a}
    side_b = members.get(b, set()) | {b}
    return any(low_high(x, y) in rejections for x in side_a for y in side_b)


def shares_contact(pair: Mapping[str, Any], facts: Facts) -> bool:
    left, right = facts[pair["person_low"]], facts[pair["person_high"]]
    levels = pair["levels"]
    return (
        levels.get("email", -1) == 1
        or levels.get("phone", -1) == 1
        or any(
            left[key] is not None and left[key] == right[key] for key in ("household_id", "email", "phone")
        )
    )


def relatives(pair: Mapping[str, Any], facts: Facts) -> bool:
    """A shared email, phone or household, given names with nothing in common (not similar, not a
    nickname, not swapped) and no agreeing birth date: family members, not a duplicate to review."""
    levels = pair["levels"]
    return (
        shares_contact(pair, facts)
        and levels.get("given_name", -1) == 0
        and levels.get("date_of_birth", -1) <= 0
    )


def contact_guard(pair: Mapping[str, Any], facts: Facts) -> str | None:
    """Warehouse guard rails on top of the engine's, for pairs the engine calls `match`."""
    left, right = facts[pair["person_low"]], facts[pair["person_high"]]
    levels = pair["levels"]
    # Shared household/email/phone with a different given name or birth date: never automatic. Different
    # means below the engine's "similar" level: a typo, an accent, a nickname or swapped day and month
    # are the same name or date.
    given_differs = levels.get("given_name", -1) < 2
    dob_differs = levels.get("date_of_birth", -1) in (0, 1)
    if shares_contact(pair, facts) and (given_differs or dob_differs):
        return GUARD_SHARED_CONTACT
    # A donor who never enrolled against a learner with nothing but the name in common.
    donor_vs_learner = (left["donor_only"] and right["is_learner"]) or (
        right["donor_only"] and left["is_learner"]
    )
    if donor_vs_learner and not any(levels.get(name, -1) >= 1 for name in CORROBORATING_LEVELS):
        return GUARD_DONOR_LEARNER_NAME_ONLY
    # A name plus a shared email or phone is what relatives named after each other also have: without an
    # agreeing birth date, address or id it is not certain.
    if not any(levels.get(name, -1) >= 2 for name in ("date_of_birth", "street", "postcode", "other_id")):
        return GUARD_CONTACT_ONLY
    return None


def age_order(facts: Facts, person: str) -> tuple[Any, str, str]:
    """The older person record first; records of one load (one transaction: one ``created_at``) by their
    first source identity, so the same data picks the same survivor on every fresh start. Not by person id:
    a random UUID made the survivor, and so the merged person's name, differ between starts (issue 21)."""
    return facts[person]["created_at"], facts[person].get("first_identity") or "", person


def survivor_first(facts: Facts, a: str, b: str) -> tuple[str, str]:
    """The older person record survives (its id is the one other systems have seen longest)."""
    first, second = sorted((a, b), key=lambda p: age_order(facts, p))
    return first, second


@dataclass
class Triage:
    """What becomes of a run's scored pairs before any merge: `to_merge` may still be held back by the
    clustering rule (`cluster_survivors`)."""

    to_merge: list[dict[str, Any]] = field(default_factory=list)
    to_queue: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0
    relatives: int = 0
    guarded: int = 0


def triage_pairs(
    scored: Iterable[Mapping[str, Any]],
    facts: Facts,
    known: Mapping[tuple[str, str], Mapping[str, Any]],
    members: Mapping[str, set[str]],
    rejections: set[tuple[str, str]],
    auto_merge_threshold: float,
) -> Triage:
    """Sort scored pairs (best first) into automatic merges and the review queue.

    `known` holds the pairs already in the queue's history by (low, high), with `status` and
    `auto_merge_allowed`; a pair decided or merged before is not proposed again, nor is one a reviewer
    rejected for any record of either side's merged set, one whose side was merged meanwhile, or relatives.
    """
    triage = Triage()
    for pair in scored:
        key = (pair["person_low"], pair["person_high"])
        previous = known.get(key)
        if previous is not None and previous["status"] in ("rejected", "merged", "approved"):
            triage.rejected += previous["status"] == "rejected"
            continue
        if rejected(*key, members, rejections):
            triage.rejected += 1
            continue
        if any(facts[p]["merged_into"] for p in key):
            continue  # one side was merged by an approval before
        if relatives(pair, facts):
            triage.relatives += 1
            continue
        guard = pair["guard"]
        if pair["class"] == MATCH:
            guard = guard or contact_guard(pair, facts)
            if guard is None and pair["score"] < auto_merge_threshold:
                guard = GUARD_BELOW_AUTO_MERGE
            if guard is None and previous is not None and not previous["auto_merge_allowed"]:
                guard = GUARD_UNMERGED
            if guard is None:
                triage.to_merge.append(dict(pair))
                continue
            triage.guarded += 1
        triage.to_queue.append({**pair, "guard": guard})
    return triage


def cluster_survivors(to_merge: Sequence[Mapping[str, Any]], facts: Facts) -> dict[str, str]:
    """The survivor of each person's cluster of certain matches: its oldest record.

    A member merges only into its cluster's survivor and only over a direct match with it, so a chain
    A~B~C never merges A and C on the strength of B alone.
    """
    clusters = Clusters()
    for pair in to_merge:
        clusters.union(pair["person_low"], pair["person_high"])
    groups: dict[str, list[str]] = {}
    for person in {p for pair in to_merge for p in (pair["person_low"], pair["person_high"])}:
        groups.setdefault(clusters.find(person), []).append(person)
    return {
        person: min(group, key=lambda p: age_order(facts, p)) for group in groups.values() for person in group
    }
