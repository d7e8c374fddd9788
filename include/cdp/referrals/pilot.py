"""The pilot: a deterministic, representative 5–10% of active learners who try the new referral program first.

Representative by construction: the active learners are ordered by stratum (country, then age band, then
the year of their first enrolment) and, inside a stratum, by a stable hash of their person id; the pilot is
a systematic sample of that order (every 1/share-th learner). So every stratum gets its share to within one
learner, big countries and small alike, and the same learners on the same data are chosen on every run,
whatever order the database returns them in. ``representativeness`` measures it: per dimension, the largest
gap between a value's share among the pilot and among the active learners.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from cdp.audit import record_event
from cdp.paths import SQL_DIR
from cdp.warehouse import Actor, transaction

log = logging.getLogger(__name__)

POPULATION_SQL = SQL_DIR / "referrals" / "pilot_population.sql"
DEFAULT_SHARE = 0.07
AGE_BANDS = ((13, "under 13"), (18, "13-17"), (25, "18-24"), (45, "25-44"), (65, "45-64"))
DIMENSIONS = ("country", "age_band", "cohort")


@dataclass(frozen=True)
class Member:
    person_id: str
    country: str
    age_band: str
    cohort: str

    @property
    def stratum(self) -> str:
        return f"{self.country}|{self.age_band}|{self.cohort}"

    @property
    def stable_hash(self) -> str:
        return hashlib.sha256(f"referral-pilot:{self.person_id}".encode()).hexdigest()


@dataclass(frozen=True)
class PilotResult:
    as_of: date
    active: int
    chosen: int
    added: int
    removed: int
    worst_gap: dict[str, float]


def age_band(date_of_birth: date | None, as_of: date) -> str:
    if date_of_birth is None:
        return "unknown"
    years = (
        as_of.year
        - date_of_birth.year
        - ((as_of.month, as_of.day) < (date_of_birth.month, date_of_birth.day))
    )
    return next((label for limit, label in AGE_BANDS if years < limit), "65+")


def choose(members: Iterable[Member], share: float = DEFAULT_SHARE) -> list[Member]:
    """Every 1/share-th member in (stratum, stable hash) order: round(share × n) members."""
    if not 0.05 <= share <= 0.10:
        raise ValueError(f"the pilot share must be between 5% and 10%, not {share:.1%}")
    ordered = sorted(members, key=lambda m: (m.country, m.age_band, m.cohort, m.stable_hash))
    return [
        m for i, m in enumerate(ordered) if math.floor((i + 1) * share + 0.5) > math.floor(i * share + 0.5)
    ]


def representativeness(population: Sequence[Member], pilot: Sequence[Member]) -> dict[str, float]:
    """Per dimension, the largest absolute gap between a value's share in the pilot and in the population."""
    gaps = {}
    for dimension in DIMENSIONS:
        everyone = Counter(getattr(m, dimension) for m in population)
        chosen = Counter(getattr(m, dimension) for m in pilot)
        gaps[dimension] = max(
            (
                abs(chosen[value] / max(len(pilot), 1) - count / len(population))
                for value, count in everyone.items()
            ),
            default=0.0,
        )
    return gaps


def active_learners(conn, as_of: date, active_days: int = 365) -> list[Member]:
    rows = conn.execute(POPULATION_SQL.read_text(), {"as_of": as_of, "active_days": active_days}).fetchall()
    return [
        Member(
            row["person_id"],
            row["country"] or "unknown",
            age_band(row["date_of_birth"], as_of),
            str(row["cohort"].year),
        )  # fmt: skip
        for row in rows
    ]


def select_pilot(
    url: str, *, as_of: date, actor: Actor, run_id: str, share: float = DEFAULT_SHARE, active_days: int = 365
) -> PilotResult:
    """Choose the pilot for ``as_of`` and make ``ops.referral_pilot`` hold exactly it (a re-run changes nothing)."""
    with transaction(url, actor) as conn:
        population = active_learners(conn, as_of, active_days)
        pilot = choose(population, share) if population else []
        chosen = [m.person_id for m in pilot]
        removed = conn.execute(
            "DELETE FROM ops.referral_pilot WHERE NOT (person_id::text = ANY (%s))", (chosen,)
        ).rowcount
        added = 0
        for member in pilot:
            added += conn.execute(
                "INSERT INTO ops.referral_pilot (person_id, stratum, as_of, chosen_run_id) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (person_id) DO NOTHING",
                (member.person_id, member.stratum, as_of, run_id),
            ).rowcount
        gaps = representativeness(population, pilot) if pilot else dict.fromkeys(DIMENSIONS, 0.0)
        result = PilotResult(as_of, len(population), len(pilot), added, removed, gaps)
        if added or removed:
            record_event(conn, "pilot_selection", "referral_pilot", as_of.isoformat(),
                         {"active": result.active, "chosen": result.chosen, "added": added, "removed": removed,
                          "share": share, "worst_gap": gaps})  # fmt: skip
    log.info("referral pilot as of %s: %d of %d active learners (%d added, %d removed); worst gaps %s",
             as_of, result.chosen, result.active, added, removed,
             {k: round(v, 4) for k, v in gaps.items()})  # fmt: skip
    return result
