"""The shared core of a generated world: size knobs, the people (households, names, ages, consent) and
the helpers every vendor module draws its tables with.

Vendor modules (``moodle``, ``stripe``, ``salesforce``, …) import this and add their tables to the world;
``generator.World`` puts the core and the registered vendors together. Nothing here knows a vendor.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from cdp_sandbox import people
from cdp_sandbox.formats import DAY, to_epoch
from cdp_sandbox.names import CULTURE_WEIGHTS, CULTURES, PARTNER_NAMES
from cdp_sandbox.tables import REASON_CODE, Table, tag

UNKNOWN_BIRTH = -(2**31)
#: The span of a world without a reference day: a fixed past that tests and benchmarks were written against.
FIXED_START = datetime(2023, 1, 1, tzinfo=UTC)
FIXED_END = datetime(2025, 1, 1, tzinfo=UTC)
PARENTAL_CONSENT = ("none", "pending", "verified")


class Credentials:
    """What each sandboxed vendor accepts (``world.credentials.stripe``); anything else gets its auth error."""

    def __init__(self, by_source: Mapping[str, str]) -> None:
        self._by_source = dict(by_source)

    def for_source(self, source: str) -> str:
        try:
            return self._by_source[source]
        except KeyError:
            raise KeyError(f"no sandbox credential for {source!r}; have {sorted(self._by_source)}") from None

    def __getattr__(self, source: str) -> str:
        if source.startswith("_"):
            raise AttributeError(source)
        try:
            return self._by_source[source]
        except KeyError:
            raise AttributeError(f"no sandbox credential for {source!r}") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Credentials) and self._by_source == other._by_source

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._by_source.items())))

    def __repr__(self) -> str:
        return f"Credentials({sorted(self._by_source)})"


@dataclass(frozen=True)
class Ids:
    """Vendor-side identifiers of the things the connectors are configured with."""

    typeform_form_id: str = "kDnP4xQe"
    zigpoll_account_id: str = "64a1f0c2e4b0a1b2c3d4e5f6"
    zigpoll_poll_id: str = "64a1f0c2e4b0a1b2c3d4e5f7"
    referralhero_list_uuid: str = "MF4a7c2e9b1d"
    salesforce_api_version: str = "v60.0"


@dataclass
class WorldCore:
    """The part of a world every vendor shares: its size knobs, its people and the tables built so far.

    ``generator.World`` adds each vendor's tables (``cdp_sandbox.vendors``) and the truth.
    """

    seed: int = 7
    learners: int = 1000
    donor_only: int | None = None
    enrollments: int | None = None
    donations: int | None = None
    survey_responses: int | None = None
    referral_subscribers: int | None = None
    courses: int | None = None
    partners: int | None = None
    duplicate_rate: float = 0.09
    malformed_rate: float = 0.005
    #: Share of Opportunities whose Amount a person mistyped in the CRM (see ``crm_amounts``); off by default.
    crm_amount_error_rate: float = 0.0
    edited_share: float = 0.35
    #: The world's span. Without ``today`` a fixed past (``FIXED_START`` to ``FIXED_END``); with it, the
    #: ``history_days`` before that day plus ``live_days`` after it (the future, hidden until it happens).
    start: datetime | None = None
    end: datetime | None = None
    #: What each vendor accepts; ``generator.World`` fills in every registered vendor's sandbox credential.
    credentials: Credentials = field(default_factory=lambda: Credentials({}))
    ids: Ids = field(default_factory=Ids)
    #: The reference day (UTC): the world's history ends at its midnight, so yesterday, last month and the
    #: past ``history_days`` hold data whatever day it is. None: the fixed past above, no future.
    today: date | None = None
    history_days: int = 90
    #: Days drawn after the reference day: records that happen while a live sandbox runs.
    live_days: int = 14
    #: Live: what is served moves with the clock (``clock``, default the wall clock): a record appears once
    #: its time has come. Not live: the world stands still at the reference day's midnight.
    live: bool = False
    clock: Callable[[], float] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = self.learners
        self.donor_only = n // 4 if self.donor_only is None else self.donor_only
        self.enrollments = 3 * n if self.enrollments is None else self.enrollments
        self.donations = 2 * n if self.donations is None else self.donations
        self.survey_responses = n // 2 if self.survey_responses is None else self.survey_responses
        self.referral_subscribers = n // 5 if self.referral_subscribers is None else self.referral_subscribers
        self.courses = max(12, min(400, n // 500)) if self.courses is None else self.courses
        self.partners = max(3, min(len(PARTNER_NAMES), n // 2000)) if self.partners is None else self.partners
        if self.today is not None:
            present = datetime(self.today.year, self.today.month, self.today.day, tzinfo=UTC)
            self.end = self.end or present + timedelta(days=self.live_days)
            self.start = self.start or present - timedelta(days=self.history_days)
        else:
            if self.live:
                raise ValueError("a live world needs a reference day (today)")
            self.start = self.start or FIXED_START
            self.end = self.end or FIXED_END
        self.start_ts = to_epoch(self.start)
        self.end_ts = to_epoch(self.end)
        if self.end_ts <= self.start_ts:
            raise ValueError("end must be after start")
        #: Where the past ends: the reference day's midnight (the world's end when it has no reference day).
        self.present_ts = self.end_ts if self.today is None else min(to_epoch(present), self.end_ts)
        if self.present_ts <= self.start_ts:
            raise ValueError("the reference day must be after the world's start")
        self.tables: dict[tuple[str, str], Table] = {}
        self._build_people()

    # ---------------------------------------------------------------- helpers
    def rng(self, purpose: int) -> np.random.Generator:
        """A vendor's own random stream: adding or changing one vendor leaves the others' data as it was."""
        return np.random.default_rng([self.seed, purpose])

    def seed_tag(self, label: str) -> str:
        """A random-looking, per-seed string that vendor ids are made from (``formats.stripe_id`` …)."""
        return tag(self.seed, label, 24)

    def table(self, source: str, stream: str) -> Table:
        try:
            return self.tables[(source, stream)]
        except KeyError:
            raise KeyError(f"no sandbox stream {source}.{stream}; have {sorted(self.tables)}") from None

    def records(
        self,
        source: str,
        stream: str,
        since: datetime | int | None = None,
        until: datetime | int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every record of a stream in [since, until) by its cursor time, as the vendor would send it."""
        table = self.table(source, stream)
        return table.records(table.window(to_epoch(since), to_epoch(until)).tolist())

    def touch(self, source: str, stream: str, record_ids: list[Any], at: datetime | int) -> None:
        """Edit records in the source now: their modification time moves to `at`."""
        table = self.table(source, stream)
        table.touch([table.index_of(record_id) for record_id in record_ids], to_epoch(at))

    def draw_edits(self, rng: np.random.Generator, created: np.ndarray) -> np.ndarray:
        """Most records are never touched again; the rest are edited days or months later."""
        edited = rng.random(created.shape[0]) < self.edited_share
        delay = rng.exponential(30 * DAY, created.shape[0]).astype(np.int64) + 60
        modified = np.where(edited, created + delay, created)
        return np.minimum(modified, self.end_ts - 1).astype(np.int64)

    def draw_malformed(self, rng: np.random.Generator, rows: int, reasons: tuple[str, ...]) -> np.ndarray:
        codes = np.zeros(rows, dtype=np.int8)
        if not reasons or self.malformed_rate <= 0:
            return codes
        hit = rng.random(rows) < self.malformed_rate
        picks = rng.integers(0, len(reasons), rows)
        reason_codes = np.array([REASON_CODE[r] for r in reasons], dtype=np.int8)
        codes[hit] = reason_codes[picks[hit]]
        return codes

    def add_table(self, table: Table) -> Table:
        self.tables[(table.source, table.stream)] = table
        return self.settle(table)

    # ---------------------------------------------------------------- the present
    @property
    def has_future(self) -> bool:
        return self.present_ts < self.end_ts

    def horizon(self) -> int | None:
        """Records whose time is before this are served (None: all). Not live: the reference day's midnight;
        live: now (never before that midnight), so a record appears the moment its time comes."""
        if not self.has_future:
            return None
        if not self.live:
            return self.present_ts
        now = (self.clock or time.time)()
        return min(max(self.present_ts, int(now) + 1), self.end_ts)

    def edit_time(self) -> int:
        """When an edit made during a sync lands: after every record (the fixed past), or now."""
        horizon = self.horizon()
        return self.end_ts if horizon is None else horizon - 1

    def settle(self, table: Table) -> Table:
        """Give a table of a world with a future its horizon, and keep edits out of the future: a record made
        before the reference day was last edited before it, and one made later is not edited (so a record never
        vanishes from a listing between its creation and a later edit)."""
        if self.has_future:
            created, modified = table.created.astype(np.int64), table.modified.astype(np.int64)
            before = created < self.present_ts
            # An edit drawn after the reference day folds back into the time between creation and it
            # (deterministic, and spread out: no pile of edits on yesterday's last second).
            room = np.maximum(self.present_ts - created, 1)
            folded = np.where(modified < self.present_ts, modified, created + (modified - created) % room)
            table.modified = np.where(before, folded, created).astype(table.modified.dtype)
            table._order_cache.clear()
            table.horizon = self.horizon
        return table

    def draw_times(
        self, rng: np.random.Generator, rows: int, lo: int | None = None, hi: int | None = None
    ) -> np.ndarray:
        lo = self.start_ts if lo is None else lo
        hi = self.end_ts if hi is None else hi
        hi = max(hi, lo + 1)
        return rng.integers(lo, hi, rows, dtype=np.int64)

    def draw_after(self, rng: np.random.Generator, after: np.ndarray, skew: float = 2.0) -> np.ndarray:
        """A time after each `after` and before the world's end, skewed towards `after`."""
        span = np.maximum(self.end_ts - 1 - after, 0)
        return (after + (span * rng.random(after.shape[0]) ** skew).astype(np.int64)).astype(np.int64)

    # ---------------------------------------------------------------- people
    def _build_people(self) -> None:
        rng = self.rng(1)
        n_learners, n_donor_only = self.learners, self.donor_only
        n_partner_contacts = 2 * self.partners
        total = n_learners + n_donor_only + n_partner_contacts
        self.person_count = total
        self.first_donor_only = n_learners
        self.first_partner_contact = n_learners + n_donor_only

        sizes = rng.choice(np.array([1, 1, 1, 1, 2, 2, 3, 4]), total)
        household = np.repeat(np.arange(sizes.shape[0]), sizes)[:total].astype(np.int32)
        head = np.searchsorted(household, household, "left").astype(np.int32)  # first member's index
        household_size = np.bincount(household)[household]
        self.household, self.household_head, self.household_size = household, head, household_size

        culture = rng.choice(len(CULTURES), total, p=np.array(CULTURE_WEIGHTS)).astype(np.int8)
        culture = culture[head]
        n_given = np.array([len(c.given) for c in CULTURES])[culture]
        n_family = np.array([len(c.family) for c in CULTURES])[culture]
        n_countries = np.array([len(c.countries) for c in CULTURES])[culture]
        single_share = np.array([c.single_name_share for c in CULTURES])[culture]
        self.culture = culture
        self.given = (rng.integers(0, 1 << 30, total) % n_given).astype(np.int16)
        self.family = (rng.integers(0, 1 << 30, total) % n_family).astype(np.int16)[head]
        self.family2 = (rng.integers(0, 1 << 30, total) % n_family).astype(np.int16)[head]
        self.single_name = rng.random(total) < single_share
        self.country = (rng.integers(0, 1 << 30, total) % n_countries).astype(np.int8)[head]
        self.email_number = rng.integers(1, 100, total).astype(np.int16)
        self.email_domain = rng.integers(0, 8, total).astype(np.int8)
        self.phone_digits = rng.integers(100_000_000, 999_999_999, total)
        self.salt = rng.integers(0, 1 << 30, total)
        self.shares_family_email = (household_size > 1) & (rng.random(total) < 0.6)
        self.marketing_opt_in = rng.random(total) < 0.7

        registered = self.draw_times(rng, total)
        age_pick = rng.random(total)
        years = np.where(
            age_pick < 0.07,
            rng.integers(7, 13, total),
            np.where(age_pick < 0.19, rng.integers(13, 18, total), rng.integers(18, 76, total)),
        )
        years[n_learners:] = rng.integers(25, 85, total - n_learners)
        birth = (registered // DAY - years * 365 - rng.integers(0, 365, total)).astype(np.int64)
        unknown = (rng.random(total) < 0.1) & (np.arange(total) < n_learners)
        birth[unknown] = UNKNOWN_BIRTH
        self.birth_day = birth
        self.registered = registered
        minors = (birth != UNKNOWN_BIRTH) & (years < 18)
        consent_pick = rng.random(total)
        parental = np.where(consent_pick < 0.6, 2, np.where(consent_pick < 0.92, 1, 0)).astype(np.int8)
        self.parental_consent = np.where(minors, parental, 0).astype(np.int8)
        # Children under 13 register with a parent's address: the household's shared email.
        self.shares_family_email |= minors & (years < 13) & (household_size > 1)

        partner = np.full(total, -1, dtype=np.int16)
        by_partner = rng.random(n_learners) < 0.15
        partner[:n_learners][by_partner] = rng.integers(0, self.partners, int(by_partner.sum()))
        partner[self.first_partner_contact :] = np.arange(n_partner_contacts) // 2
        self.partner = partner
        # Partners upload cohorts in batches: everyone in a batch is created within minutes.
        self.partner_batches = self.draw_times(
            rng, self.partners * 3, hi=self.end_ts - min(120 * DAY, (self.end_ts - self.start_ts) // 4)
        ).reshape(self.partners, 3)
        for index in np.nonzero(partner[:n_learners] >= 0)[0]:
            batch = int(self.salt[index] % 3)
            self.registered[index] = self.partner_batches[partner[index], batch] + int(index % 600)

    def age_years(self, persons: np.ndarray, at: int | None = None) -> np.ndarray:
        """Age in whole years at `at` (default the person's registration), -1 when unknown."""
        at_day = (self.registered[persons] if at is None else np.full(persons.shape, at)) // DAY
        birth = self.birth_day[persons]
        return np.where(birth == UNKNOWN_BIRTH, -1, (at_day - birth) // 365)

    def name(self, person: int, variant: int = people.CANONICAL) -> people.NameParts:
        return people.render_name(
            int(self.culture[person]),
            int(self.given[person]),
            int(self.family[person]),
            int(self.family2[person]),
            bool(self.single_name[person]),
            variant,
            int(self.salt[person]),
        )

    def email(self, person: int, variant: int = people.CANONICAL) -> str:
        if self.shares_family_email[person]:
            person = int(self.household_head[person])
            variant = people.CANONICAL
        parts = self.name(person, variant if variant in (people.NICKNAME, people.TRANSLITERATION) else 0)
        number = int(self.email_number[person]) + (
            7 if variant in (people.NICKNAME, people.TRANSLITERATION) else 0
        )
        return people.email_address(parts, number, int(self.email_domain[person]), int(self.culture[person]))

    def phone(self, person: int) -> str:
        return people.phone_number(int(self.culture[person]), int(self.phone_digits[person]))

    def birth_date(self, person: int) -> str | None:
        day = int(self.birth_day[person])
        return None if day == UNKNOWN_BIRTH else (date(1970, 1, 1) + timedelta(days=day)).isoformat()

    def country_code(self, person: int) -> str:
        return CULTURES[int(self.culture[person])].countries[int(self.country[person])]
