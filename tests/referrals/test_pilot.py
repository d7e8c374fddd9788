"""The pilot is 5–10% of active learners, representative of them by country, age band and cohort, and the
same learners on every run whatever order they come in; a biased choice is told apart."""

from __future__ import annotations

import random
from datetime import date

import psycopg
import pytest
from support import snapshot

from cdp.referrals.pilot import Member, active_learners, choose, representativeness, select_pilot
from cdp.warehouse import Actor, transaction

ACTOR = Actor("pytest")
AS_OF = date(2024, 12, 31)
MAX_GAP = 0.02  # a value's share in the pilot is within 2 points of its share among active learners


def _population(size: int, seed: int = 5) -> list[Member]:
    rng = random.Random(seed)
    countries = rng.choices(
        ["US", "IN", "NG", "BR", "DE", "MX", "KE", "FR"], weights=[30, 20, 12, 10, 8, 8, 7, 5], k=size
    )
    bands = rng.choices(["under 13", "13-17", "18-24", "25-44", "45-64", "65+", "unknown"],
                        weights=[7, 12, 20, 30, 15, 6, 10], k=size)  # fmt: skip
    cohorts = rng.choices(["2023", "2024"], k=size)
    return [
        Member(f"{rng.getrandbits(128):032x}", c, b, y)
        for c, b, y in zip(countries, bands, cohorts, strict=True)
    ]


def test_the_pilot_is_its_share_and_representative() -> None:
    population = _population(20_000)
    pilot = choose(population, 0.07)
    assert len(pilot) == round(0.07 * len(population))
    gaps = representativeness(population, pilot)
    assert max(gaps.values()) < MAX_GAP, gaps


def test_a_biased_pilot_is_told_apart() -> None:
    population = _population(20_000)
    biased = sorted(population, key=lambda m: m.country)[
        : len(choose(population, 0.07))
    ]  # the first countries
    assert representativeness(population, biased)["country"] > 0.1
    by_age = [m for m in population if m.age_band in ("18-24", "25-44")][:1400]
    assert representativeness(population, by_age)["age_band"] > 0.1


def test_the_same_learners_are_chosen_whatever_the_order() -> None:
    population = _population(5_000)
    first = {m.person_id for m in choose(population, 0.07)}
    shuffled = list(population)
    random.Random(99).shuffle(shuffled)
    assert {m.person_id for m in choose(shuffled, 0.07)} == first
    assert {m.person_id for m in choose(population[::-1], 0.07)} == first


@pytest.mark.parametrize("share", [0.04, 0.11])
def test_a_share_outside_five_to_ten_percent_is_refused(share: float) -> None:
    with pytest.raises(ValueError, match="between 5% and 10%"):
        choose(_population(100), share)


def test_the_warehouse_pilot_is_chosen_once_and_rerunning_changes_nothing(
    warehouse_url: str, synced_learning: None
) -> None:
    first = select_pilot(warehouse_url, as_of=AS_OF, actor=ACTOR, run_id="run-1")
    with transaction(warehouse_url, ACTOR) as conn:
        population = active_learners(conn, AS_OF)
    assert first.active == len(population) > 500
    assert 0.05 <= first.chosen / first.active <= 0.10 and first.added == first.chosen
    assert max(first.worst_gap.values()) < 0.1, first.worst_gap
    before = snapshot(warehouse_url, ("ops.referral_pilot", "audit.audit_events"))

    again = select_pilot(warehouse_url, as_of=AS_OF, actor=ACTOR, run_id="run-2")

    assert (again.added, again.removed, again.chosen) == (0, 0, first.chosen)
    assert snapshot(warehouse_url, ("ops.referral_pilot", "audit.audit_events")) == before
    with psycopg.connect(warehouse_url) as conn:
        chosen = {row[0] for row in conn.execute("SELECT person_id::text FROM ops.referral_pilot")}
    assert chosen == {m.person_id for m in choose(population)}
