"""Seeded generator of one nonprofit's world, with the true answers kept beside it.

Deterministic from a seed and fast at any scale: every table is a handful of numpy
columns drawn in bulk (timestamps, truth person, malformed reason), and a record's
JSON is built from its row index only when someone reads it. 100k learners with
300k enrollments, 200k donations and 50k survey responses build in a few seconds.

    world = World(seed=7, learners=1000)
    world.truth.person_of("moodle", "users", 42)          # -> "P0000017"
    world.truth.expected_count("stripe", "charges", since, until)
    world.truth.malformed("salesforce", "Opportunity")    # {record id: reason}
    world.truth.ledger.discrepancies                       # what reconciliation must find

The messiness follows the seed texts: ~9% duplicates (nicknames, typos, swapped name
order, transliterations, a partner re-uploading a cohort), families sharing one
email, donors who never enrolled, minors with pending parental consent, survey
payloads without the age field, and a small share of malformed records.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from cdp_sandbox import people
from cdp_sandbox.crm_amounts import crm_amount
from cdp_sandbox.names import COURSE_TOPICS, CULTURE_WEIGHTS, CULTURES, PARTNER_NAMES
from cdp_sandbox.tables import (
    MALFORMED_REASONS,
    REASON_CODE,
    Table,
    base62,
    salesforce_id,
    salesforce_index,
    tag,
    unbase62,
)

DAY = 86_400
UNKNOWN_BIRTH = -(2**31)
CURRENCIES = ("usd", "eur", "gbp", "cad")
CURRENCY_WEIGHTS = (0.8, 0.08, 0.07, 0.05)
PARENTAL_CONSENT = ("none", "pending", "verified")


def to_epoch(moment: datetime | date | int | float | None) -> int | None:
    """Epoch seconds for a datetime (naive means UTC), a date (midnight UTC) or a number."""
    if moment is None:
        return None
    if isinstance(moment, int | float):
        return int(moment)
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp())
    return int(datetime(moment.year, moment.month, moment.day, tzinfo=UTC).timestamp())


def iso_z(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_date(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def salesforce_datetime(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def impossible_date(ts: int) -> str:
    """A date no calendar has (February 30th), in the record's own year."""
    return f"{datetime.fromtimestamp(ts, UTC).year}-02-30"


@dataclass(frozen=True)
class Credentials:
    """What each sandboxed vendor accepts; anything else gets the vendor's auth error."""

    moodle: str = "sandbox-moodle-wstoken-0001"
    salesforce: str = "00Dsandbox!AQ4AQSandboxSessionToken"
    stripe: str = "sk_test_sandbox51Hq2bLSandboxKey"
    zigpoll: str = "zigpoll-sandbox-api-key"
    typeform: str = "tfp_sandbox_personal_access_token"
    referralhero: str = "rh-sandbox-api-token"
    certificates: str = "cert-sandbox-api-key-0001"
    ledger: str = ""
    galaxy: str = "galaxy-sandbox-api-key"
    zendesk: str = "zendesk-sandbox-api-token"

    def for_source(self, source: str) -> str:
        return getattr(self, source)


@dataclass(frozen=True)
class Ids:
    """Vendor-side identifiers of the things the connectors are configured with."""

    typeform_form_id: str = "kDnP4xQe"
    zigpoll_account_id: str = "64a1f0c2e4b0a1b2c3d4e5f6"
    zigpoll_poll_id: str = "64a1f0c2e4b0a1b2c3d4e5f7"
    referralhero_list_uuid: str = "MF4a7c2e9b1d"
    salesforce_api_version: str = "v60.0"


@dataclass(frozen=True)
class LedgerTruth:
    """What reconciliation between Stripe, Salesforce and the ledger must find."""

    discrepancies: Mapping[str, tuple[str, ...]]  # kind -> financial transaction ids
    totals_by_month: Mapping[str, Mapping[str, int]]  # "2024-03" -> currency -> net minor units in ledger
    stripe_gross_by_month: Mapping[str, Mapping[str, int]]


class Truth:
    """The answers a correct pipeline must reproduce."""

    def __init__(self, world: World) -> None:
        self._world = world

    def person_of(self, source: str, stream: str, record_id: Any) -> str | None:
        table = self._world.table(source, stream)
        index = table.index_of(record_id)
        if index is None or not 0 <= index < len(table):
            raise KeyError(f"{source}.{stream} has no record {record_id!r}")
        person = int(table.person[index])
        return None if person < 0 else person_id(person)

    def person_map(self, source: str, stream: str) -> Iterator[tuple[Any, str | None]]:
        table = self._world.table(source, stream)
        for index in range(len(table)):
            person = int(table.person[index])
            yield table.id_of(index), (None if person < 0 else person_id(person))

    def expected_count(
        self,
        source: str,
        stream: str,
        since: datetime | int | None = None,
        until: datetime | int | None = None,
    ) -> int:
        """Records whose cursor time (modified, or created for append-only streams) is in [since, until)."""
        return self._world.table(source, stream).count(to_epoch(since), to_epoch(until))

    def expected_counts(self) -> dict[str, int]:
        return {f"{source}.{stream}": len(table) for (source, stream), table in self._world.tables.items()}

    def malformed(self, source: str, stream: str) -> dict[Any, str]:
        return self._world.table(source, stream).malformed_rows()

    def duplicate_records(self, source: str, stream: str) -> int:
        """Records beyond the first for the same real person in one stream."""
        persons = self._world.table(source, stream).person
        persons = persons[persons >= 0]
        return int(persons.shape[0] - np.unique(persons).shape[0])

    def duplicate_variant(self, record_id: int) -> str:
        """How a Moodle user record differs from its person's canonical record."""
        table = self._world.table("moodle", "users")
        return people.VARIANT_NAMES[int(table.columns["variant"][table.index_of(record_id)])]

    def minors(self, under: int = 18) -> set[str]:
        world = self._world
        ages = world.age_years(np.arange(world.person_count))
        return {person_id(int(p)) for p in np.nonzero((ages >= 0) & (ages < under))[0]}

    @property
    def ledger(self) -> LedgerTruth:
        return self._world.ledger_truth()

    @property
    def persons(self) -> int:
        return self._world.person_count


def person_id(index: int) -> str:
    return f"P{index:07d}"


@dataclass
class World:
    """One nonprofit's systems, generated from a seed. Size knobs default from `learners`."""

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
    start: datetime = datetime(2023, 1, 1, tzinfo=UTC)
    end: datetime = datetime(2025, 1, 1, tzinfo=UTC)
    credentials: Credentials = field(default_factory=Credentials)
    ids: Ids = field(default_factory=Ids)

    def __post_init__(self) -> None:
        n = self.learners
        self.donor_only = n // 4 if self.donor_only is None else self.donor_only
        self.enrollments = 3 * n if self.enrollments is None else self.enrollments
        self.donations = 2 * n if self.donations is None else self.donations
        self.survey_responses = n // 2 if self.survey_responses is None else self.survey_responses
        self.referral_subscribers = n // 5 if self.referral_subscribers is None else self.referral_subscribers
        self.courses = max(12, min(400, n // 500)) if self.courses is None else self.courses
        self.partners = max(3, min(len(PARTNER_NAMES), n // 2000)) if self.partners is None else self.partners
        self.start_ts = to_epoch(self.start)
        self.end_ts = to_epoch(self.end)
        if self.end_ts <= self.start_ts:
            raise ValueError("end must be after start")
        self.tables: dict[tuple[str, str], Table] = {}
        self.truth = Truth(self)
        self._tags = {
            label: tag(self.seed, label, 24)
            for label in ("ch", "re", "txn", "zig_resp", "zig_part", "tf", "rh", "sf", "card")
        }
        self._build_people()
        self._build_moodle()
        self._build_money()
        self._build_salesforce()
        self._build_surveys()
        self._build_referrals()
        self._build_ledger()
        from cdp_sandbox import zendesk  # the support desk (own module and random generator)

        zendesk.build(self)

    # ---------------------------------------------------------------- helpers
    def rng(self, purpose: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, purpose])

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

    def _spread_edits(self, rng: np.random.Generator, created: np.ndarray) -> np.ndarray:
        """Most records are never touched again; the rest are edited days or months later."""
        edited = rng.random(created.shape[0]) < self.edited_share
        delay = rng.exponential(30 * DAY, created.shape[0]).astype(np.int64) + 60
        modified = np.where(edited, created + delay, created)
        return np.minimum(modified, self.end_ts - 1).astype(np.int64)

    def _malformed(self, rng: np.random.Generator, rows: int, reasons: tuple[str, ...]) -> np.ndarray:
        codes = np.zeros(rows, dtype=np.int8)
        if not reasons or self.malformed_rate <= 0:
            return codes
        hit = rng.random(rows) < self.malformed_rate
        picks = rng.integers(0, len(reasons), rows)
        reason_codes = np.array([REASON_CODE[r] for r in reasons], dtype=np.int8)
        codes[hit] = reason_codes[picks[hit]]
        return codes

    def _add(self, table: Table) -> Table:
        self.tables[(table.source, table.stream)] = table
        return table

    def _uniform_times(
        self, rng: np.random.Generator, rows: int, lo: int | None = None, hi: int | None = None
    ) -> np.ndarray:
        lo = self.start_ts if lo is None else lo
        hi = self.end_ts if hi is None else hi
        hi = max(hi, lo + 1)
        return rng.integers(lo, hi, rows, dtype=np.int64)

    def _between(self, rng: np.random.Generator, after: np.ndarray, skew: float = 2.0) -> np.ndarray:
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

        registered = self._uniform_times(rng, total)
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
        self.partner_batches = self._uniform_times(
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

    # ---------------------------------------------------------------- Moodle
    def _build_moodle(self) -> None:
        rng = self.rng(2)
        n_learners = self.learners
        learner_rows = np.arange(n_learners)

        # The partner re-upload: partner 0's first batch, uploaded again months later.
        cohort = np.nonzero((self.partner[:n_learners] == 0) & (self.salt[:n_learners] % 3 == 0))[0]
        budget = int(round(self.duplicate_rate * n_learners))
        cohort = cohort[: max(0, budget // 4)]
        reupload_at = min(
            int(self.partner_batches[0, 0]) + 60 * DAY,
            self.end_ts - min(DAY, (self.end_ts - self.start_ts) // 8),
        )

        others = budget - cohort.shape[0]
        dup_persons = rng.integers(0, n_learners, max(others, 0))
        dup_variants = np.empty(dup_persons.shape[0], dtype=np.int8)
        for k, person in enumerate(dup_persons.tolist()):
            kinds = people.available_variants(
                int(self.culture[person]), int(self.given[person]), int(self.family[person])
            )
            dup_variants[k] = kinds[int(self.salt[person] + k) % len(kinds)]
        dup_created = self._between(rng, self.registered[dup_persons], skew=3.0)

        persons = np.concatenate([learner_rows, dup_persons, cohort]).astype(np.int32)
        variants = np.concatenate(
            [
                np.zeros(n_learners, np.int8),
                dup_variants,
                np.full(cohort.shape[0], people.PARTNER_REUPLOAD, np.int8),
            ]
        )
        created = np.concatenate(
            [self.registered[:n_learners], dup_created, reupload_at + np.arange(cohort.shape[0]) % 600]
        ).astype(np.int64)
        order = np.argsort(created, kind="stable")
        persons, variants, created = persons[order], variants[order], created[order]
        modified = self._spread_edits(rng, created)
        malformed = self._malformed(
            rng, persons.shape[0], ("missing_required", "malformed_email", "impossible_date", "unknown_enum")
        )
        self._moodle_user_row_of_person = np.full(self.person_count, -1, dtype=np.int64)
        canonical = variants == people.CANONICAL
        self._moodle_user_row_of_person[persons[canonical]] = np.nonzero(canonical)[0]

        first_user_id = 3  # 1 is the guest user, 2 the admin, as in a fresh Moodle
        users = self._add(
            Table(
                "moodle",
                "users",
                "id",
                "timemodified",
                "modified",
                created,
                modified,
                persons,
                malformed,
                builder=lambda i: self._moodle_user(i),
                id_of=lambda i: i + first_user_id,
                index_of=lambda rid: _int_or_none(rid, -first_user_id),
                columns={"variant": variants},
            )
        )

        n_courses = self.courses
        course_created = self._uniform_times(
            rng, n_courses, self.start_ts - 365 * DAY, self.start_ts + 180 * DAY
        )
        self._add(
            Table(
                "moodle",
                "courses",
                "id",
                None,
                "modified",
                course_created,
                self._spread_edits(rng, course_created),
                np.full(n_courses, -1, np.int32),
                self._malformed(rng, n_courses, ()),
                builder=lambda i: self._moodle_course(i),
                id_of=lambda i: i + 2,
                index_of=lambda rid: _int_or_none(rid, -2),
            )
        )

        n_enrol = self.enrollments
        user_rows = rng.integers(0, len(users), n_enrol)
        course_of = rng.integers(0, n_courses, n_enrol).astype(np.int32)
        enrol_created = self._between(rng, np.maximum(users.created[user_rows], course_created[course_of]))
        order = np.argsort(enrol_created, kind="stable")
        user_rows, course_of, enrol_created = user_rows[order], course_of[order], enrol_created[order]
        enrol_status = (rng.random(n_enrol) < 0.08).astype(np.int8)
        self._add(
            Table(
                "moodle",
                "enrollments",
                "id",
                "timemodified",
                "modified",
                enrol_created,
                self._spread_edits(rng, enrol_created),
                users.person[user_rows],
                self._malformed(rng, n_enrol, ("missing_required", "impossible_date", "unknown_enum")),
                builder=lambda i: self._moodle_enrolment(i),
                id_of=lambda i: i + 1,
                index_of=lambda rid: _int_or_none(rid, -1),
                columns={"user_row": user_rows, "course": course_of, "status": enrol_status},
            )
        )

        completes = (rng.random(n_enrol) < 0.45) & (enrol_status == 0)
        done_at = enrol_created + rng.integers(7 * DAY, 120 * DAY, n_enrol)
        completes &= done_at < self.end_ts
        completion_enrolment = np.nonzero(completes)[0]
        completed_at = done_at[completion_enrolment]
        order = np.argsort(completed_at, kind="stable")
        completion_enrolment, completed_at = completion_enrolment[order], completed_at[order]
        n_done = completion_enrolment.shape[0]
        self._add(
            Table(
                "moodle",
                "course_completions",
                "id",
                "timecompleted",
                "created",
                completed_at,
                completed_at.copy(),
                users.person[user_rows[completion_enrolment]],
                self._malformed(rng, n_done, ("missing_required", "impossible_date")),
                builder=lambda i: self._moodle_completion(i),
                id_of=lambda i: i + 1,
                index_of=lambda rid: _int_or_none(rid, -1),
                columns={"enrolment": completion_enrolment},
            )
        )

        wants_certificate = rng.random(n_done) < 0.35
        requested_at = completed_at + rng.exponential(3 * DAY, n_done).astype(np.int64) + 300
        wants_certificate &= requested_at < self.end_ts
        certificate_completion = np.nonzero(wants_certificate)[0]
        certificate_at = requested_at[certificate_completion]
        order = np.argsort(certificate_at, kind="stable")
        certificate_completion, certificate_at = certificate_completion[order], certificate_at[order]
        completions = self.table("moodle", "course_completions")
        self._add(
            Table(
                "moodle",
                "certificate_requests",
                "id",
                "timecreated",
                "created",
                certificate_at,
                certificate_at.copy(),
                completions.person[certificate_completion],
                self._malformed(
                    rng, certificate_completion.shape[0], ("missing_required", "impossible_date")
                ),
                builder=lambda i: self._moodle_certificate(i),
                id_of=lambda i: i + 1,
                index_of=lambda rid: _int_or_none(rid, -1),
                columns={"completion": certificate_completion},
            )
        )

    def _moodle_user(self, i: int) -> dict[str, Any]:
        table = self.tables[("moodle", "users")]
        person = int(table.person[i])
        variant = int(table.columns["variant"][i])
        reason = MALFORMED_REASONS[int(table.malformed[i])]
        parts = self.name(person, variant)
        user_id = i + 3
        email = self.email(person, variant)
        if reason == "malformed_email":
            email = people.break_email(email, user_id)
        elif reason == "missing_required":
            email = ""
        partner = int(self.partner[person])
        birth = self.birth_date(person)
        if reason == "impossible_date":
            birth = impossible_date(int(table.created[i]))
        consent = PARENTAL_CONSENT[int(self.parental_consent[person])]
        if reason == "unknown_enum":
            consent = "maybe"
        username = people.ascii_fold(email.split("@")[0]).lower() or f"user{user_id}"
        if variant == people.PARTNER_REUPLOAD:
            username = f"{username}_{user_id}"
        customfields = [
            {"type": "text", "value": birth or "", "name": "Date of birth", "shortname": "dateofbirth"},
            {"type": "menu", "value": consent, "name": "Parental consent", "shortname": "parentalconsent"},
            {
                "type": "checkbox",
                "value": "1" if self.marketing_opt_in[person] else "0",
                "name": "I agree to receive news by email",
                "shortname": "marketingconsent",
            },
            {"type": "text", "value": self.phone(person), "name": "Phone", "shortname": "phone"},
        ]
        created = int(table.created[i])
        return {
            "id": user_id,
            "username": username,
            "firstname": parts.given,
            "lastname": parts.family or "-",
            "fullname": f"{parts.given} {parts.family or '-'}",
            "email": email,
            "department": "",
            "institution": PARTNER_NAMES[partner] if partner >= 0 else "",
            "idnumber": "",
            "auth": "manual" if partner >= 0 else "email",
            "suspended": False,
            "confirmed": True,
            "lang": "en",
            "theme": "",
            "timezone": "99",
            "mailformat": 1,
            "description": "",
            "descriptionformat": 1,
            "city": "",
            "country": self.country_code(person),
            "firstaccess": created + 120,
            "lastaccess": int(table.modified[i]),
            "timecreated": created,
            "timemodified": int(table.modified[i]),
            "profileimageurlsmall": f"https://lms.example.org/theme/image.php/boost/core/1/u/f2?u={user_id}",
            "profileimageurl": f"https://lms.example.org/theme/image.php/boost/core/1/u/f1?u={user_id}",
            "customfields": customfields,
        }

    def _moodle_course(self, i: int) -> dict[str, Any]:
        table = self.tables[("moodle", "courses")]
        topic = COURSE_TOPICS[i % len(COURSE_TOPICS)]
        cohort = i // len(COURSE_TOPICS) + 1
        created = int(table.created[i])
        return {
            "id": i + 2,
            "shortname": f"{topic[:12].upper().replace(' ', '')}-{cohort:02d}",
            "categoryid": 1 + i % 4,
            "categorysortorder": 10000 + i,
            "fullname": f"{topic} (cohort {cohort})",
            "displayname": f"{topic} (cohort {cohort})",
            "idnumber": "",
            "summary": f"<p>{topic}.</p>",
            "summaryformat": 1,
            "format": "topics",
            "showgrades": 1,
            "newsitems": 5,
            "startdate": created + 7 * DAY,
            "enddate": created + 97 * DAY,
            "numsections": 10,
            "maxbytes": 0,
            "showreports": 0,
            "visible": 1,
            "groupmode": 0,
            "groupmodeforce": 0,
            "defaultgroupingid": 0,
            "timecreated": created,
            "timemodified": int(table.modified[i]),
            "enablecompletion": 1,
            "completionnotify": 0,
            "lang": "",
            "forcetheme": "",
            "courseformatoptions": [],
            "showactivitydates": True,
            "showcompletionconditions": True,
        }

    def _moodle_enrolment(self, i: int) -> dict[str, Any]:
        table = self.tables[("moodle", "enrollments")]
        user_row = int(table.columns["user_row"][i])
        course_id = int(table.columns["course"][i]) + 2
        reason = MALFORMED_REASONS[int(table.malformed[i])]
        created = int(table.created[i])
        partner = int(self.partner[int(table.person[i])])
        status: int = int(table.columns["status"][i])
        time_end = 0
        if reason == "unknown_enum":
            status = 7
        elif reason == "impossible_date":
            time_end = created - 30 * DAY
        return {
            "id": i + 1,
            "status": status,
            "enrolid": course_id * 3 + (0 if partner >= 0 else 1),
            "enrol": "manual" if partner >= 0 else "self",
            "courseid": course_id,
            "userid": None if reason == "missing_required" else user_row + 3,
            "timestart": created,
            "timeend": time_end,
            "modifierid": 2 if partner >= 0 else user_row + 3,
            "timecreated": created,
            "timemodified": int(table.modified[i]),
        }

    def _moodle_completion(self, i: int) -> dict[str, Any]:
        table = self.tables[("moodle", "course_completions")]
        enrolments = self.tables[("moodle", "enrollments")]
        enrolment = int(table.columns["enrolment"][i])
        reason = MALFORMED_REASONS[int(table.malformed[i])]
        enrolled = int(enrolments.created[enrolment])
        completed = int(table.created[i])
        started = enrolled + DAY
        if reason == "impossible_date":
            started = completed + 30 * DAY
        return {
            "id": i + 1,
            "userid": None
            if reason == "missing_required"
            else int(enrolments.columns["user_row"][enrolment]) + 3,
            "course": int(enrolments.columns["course"][enrolment]) + 2,
            "timeenrolled": enrolled,
            "timestarted": started,
            "timecompleted": completed,
            "reaggregate": 0,
        }

    def _moodle_certificate(self, i: int) -> dict[str, Any]:
        table = self.tables[("moodle", "certificate_requests")]
        completion = self.tables[("moodle", "course_completions")].record(int(table.columns["completion"][i]))
        reason = MALFORMED_REASONS[int(table.malformed[i])]
        created = int(table.created[i])
        return {
            "id": i + 1,
            "userid": completion["userid"],
            "templateid": 1 + completion["course"] % 3,
            "code": "" if reason == "missing_required" else f"{tag(self.seed, f'cert{i}', 10)}",
            "emailed": 1,
            "timecreated": created,
            "expires": created - DAY if reason == "impossible_date" else 0,
            "data": "{}",
            "component": "mod_coursecertificate",
            "courseid": completion["course"],
        }

    # ---------------------------------------------------------------- Stripe
    def _build_money(self) -> None:
        rng = self.rng(3)
        n_learners = self.learners
        learner_donors = np.nonzero(rng.random(n_learners) < 0.3)[0]
        donor_pool = np.concatenate(
            [learner_donors, np.arange(self.first_donor_only, self.first_partner_contact)]
        )
        n = self.donations
        donor = (
            donor_pool[(rng.random(n) ** 1.5 * donor_pool.shape[0]).astype(np.int64)]
            if donor_pool.shape[0]
            else np.zeros(n, np.int64)
        )
        created = np.sort(self._uniform_times(rng, n))
        self.donation_donor = donor.astype(np.int32)
        self.donation_created = created
        cents = np.exp(rng.normal(np.log(4000), 0.9, n)).astype(np.int64)
        self.donation_amount = np.where(
            rng.random(n) < 0.7, np.maximum(100, (cents // 500) * 500), np.maximum(100, cents)
        ).astype(np.int64)
        self.donation_currency = rng.choice(len(CURRENCIES), n, p=np.array(CURRENCY_WEIGHTS)).astype(np.int8)
        self.donation_fee = (np.round(self.donation_amount * 0.029) + 30).astype(np.int64)
        refund_at = created + rng.exponential(7 * DAY, n).astype(np.int64) + 3600
        refunded = (rng.random(n) < 0.03) & (refund_at < self.end_ts)
        self.refund_donation = np.nonzero(refunded)[0]
        self.refund_created = refund_at[self.refund_donation]
        order = np.argsort(self.refund_created, kind="stable")
        self.refund_donation, self.refund_created = self.refund_donation[order], self.refund_created[order]
        self.refund_of_donation = np.full(n, -1, np.int64)
        self.refund_of_donation[self.refund_donation] = np.arange(self.refund_donation.shape[0])
        self.missing_in_crm = rng.random(n) < 0.005
        self.missing_in_ledger = rng.random(n) < 0.003
        self.ledger_amount_typo = (rng.random(n) < 0.002) & ~self.missing_in_ledger

        tags = self._tags
        self._add(
            Table(
                "stripe",
                "charges",
                "id",
                "created",
                "created",
                created,
                created.copy(),
                self.donation_donor,
                self._malformed(
                    rng,
                    n,
                    (
                        "missing_required",
                        "malformed_email",
                        "negative_amount",
                        "non_numeric_amount",
                        "unknown_currency",
                        "unknown_enum",
                    ),
                ),
                builder=lambda i: self._stripe_charge(i),
                id_of=lambda i: stripe_id("ch", tags["ch"], i),
                index_of=lambda rid: stripe_index(rid, "ch", tags["ch"]),
            )
        )
        n_refunds = self.refund_donation.shape[0]
        self._add(
            Table(
                "stripe",
                "refunds",
                "id",
                "created",
                "created",
                self.refund_created,
                self.refund_created.copy(),
                self.donation_donor[self.refund_donation],
                self._malformed(
                    rng,
                    n_refunds,
                    ("missing_required", "negative_amount", "unknown_currency", "unknown_enum"),
                ),
                builder=lambda i: self._stripe_refund(i),
                id_of=lambda i: stripe_id("re", tags["re"], i),
                index_of=lambda rid: stripe_index(rid, "re", tags["re"]),
            )
        )
        txn_created = np.concatenate([created, self.refund_created])
        self._add(
            Table(
                "stripe",
                "balance_transactions",
                "id",
                "created",
                "created",
                txn_created,
                txn_created.copy(),
                np.concatenate([self.donation_donor, self.donation_donor[self.refund_donation]]),
                self._malformed(
                    rng,
                    n + n_refunds,
                    ("missing_required", "non_numeric_amount", "unknown_currency", "unknown_enum"),
                ),
                builder=lambda i: self._stripe_balance_transaction(i),
                id_of=lambda i: stripe_id("txn", tags["txn"], i),
                index_of=lambda rid: stripe_index(rid, "txn", tags["txn"]),
            )
        )

    def financial_transaction_id(self, donation: int) -> str:
        return (
            f"FT-{datetime.fromtimestamp(int(self.donation_created[donation]), UTC).year}-{donation + 1:07d}"
        )

    def _stripe_charge(self, i: int) -> dict[str, Any]:
        table = self.tables[("stripe", "charges")]
        reason = MALFORMED_REASONS[int(table.malformed[i])]
        donor = int(self.donation_donor[i])
        parts = self.name(donor)
        email = self.email(donor)
        if reason == "malformed_email":
            email = people.break_email(email, i)
        amount: Any = int(self.donation_amount[i])
        currency: Any = CURRENCIES[int(self.donation_currency[i])]
        status = "succeeded"
        if reason == "negative_amount":
            amount = -amount
        elif reason == "non_numeric_amount":
            amount = f"{amount / 100:.2f}"
        elif reason == "unknown_currency":
            currency = "xyz"
        elif reason == "unknown_enum":
            status = "exploded"
        charge_id = stripe_id("ch", self._tags["ch"], i)
        refund = int(self.refund_of_donation[i])
        refunded_amount = int(self.donation_amount[i]) if refund >= 0 else 0
        refunds_data = [self._stripe_refund(refund)] if refund >= 0 else []
        created = int(table.created[i])
        country = self.country_code(donor)
        card_tail = f"{int(self.salt[donor]) % 10000:04d}"
        return {
            "id": charge_id,
            "object": "charge",
            "amount": amount,
            "amount_captured": amount,
            "amount_refunded": refunded_amount,
            "application": None,
            "application_fee": None,
            "application_fee_amount": None,
            "balance_transaction": None
            if reason == "missing_required"
            else stripe_id("txn", self._tags["txn"], i),
            "billing_details": {
                "address": {
                    "city": None,
                    "country": country,
                    "line1": None,
                    "line2": None,
                    "postal_code": None,
                    "state": None,
                },
                "email": email,
                "name": parts.full,
                "phone": None,
                "tax_id": None,
            },
            "calculated_statement_descriptor": "CDP NONPROFIT",
            "captured": True,
            "created": created,
            "currency": currency,
            "customer": None,
            "description": "Donation",
            "disputed": False,
            "failure_balance_transaction": None,
            "failure_code": None,
            "failure_message": None,
            "fraud_details": {},
            "livemode": False,
            "metadata": {"financial_transaction_id": self.financial_transaction_id(i), "campaign": "general"},
            "on_behalf_of": None,
            "outcome": {
                "advice_code": None,
                "network_advice_code": None,
                "network_decline_code": None,
                "network_status": "approved_by_network",
                "reason": None,
                "seller_message": "Payment complete.",
                "type": "authorized",
            },
            "paid": True,
            "payment_intent": None,
            "payment_method": f"pm_{tag(self.seed, f'pm{donor}', 24)}",
            "payment_method_details": {
                "card": {
                    "amount_authorized": amount,
                    "brand": "visa",
                    "checks": {
                        "address_line1_check": None,
                        "address_postal_code_check": None,
                        "cvc_check": "pass",
                    },
                    "country": country,
                    "exp_month": 1 + donor % 12,
                    "exp_year": 2027 + donor % 5,
                    "extended_authorization": {"status": "disabled"},
                    "fingerprint": tag(self.seed, f"fp{donor}", 16),
                    "funding": "credit",
                    "incremental_authorization": {"status": "unavailable"},
                    "installments": {"plan": {"count": None, "interval": None, "type": "fixed_count"}},
                    "last4": card_tail,
                    "mandate": None,
                    "multicapture": {"status": "unavailable"},
                    "network": "visa",
                    "network_token": {"used": False},
                    "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
                    "three_d_secure": {
                        "authentication_flow": None,
                        "electronic_commerce_indicator": None,
                        "exemption_indicator": None,
                        "result": None,
                        "result_reason": None,
                        "transaction_id": None,
                        "version": None,
                    },
                    "wallet": {"dynamic_last4": None, "type": "link"},
                    "authorization_code": None,
                    "regulated_status": None,
                    "network_transaction_id": None,
                    "transaction_link_id": None,
                },
                "type": "card",
            },
            "receipt_email": email,
            "receipt_number": None,
            "receipt_url": f"https://pay.stripe.com/receipts/payment/{charge_id}",
            "refunded": refund >= 0,
            "refunds": {
                "data": refunds_data,
                "has_more": False,
                "object": "list",
                "url": f"/v1/charges/{charge_id}/refunds",
            },
            "review": None,
            "shipping": {},
            "source_transfer": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": None,
            "status": status,
            "transfer_data": {"amount": None, "destination": {"id": "acct_sandbox", "object": "account"}},
            "transfer_group": None,
            "source": {
                "allow_redisplay": None,
                "amount": amount,
                "client_secret": "src_client_secret_sandbox",
                "created": created,
                "currency": currency,
                "flow": "none",
                "id": f"src_{card_tail}",
                "livemode": False,
                "metadata": None,
                "object": "source",
                "owner": {
                    "address": {
                        "city": None,
                        "country": country,
                        "line1": None,
                        "line2": None,
                        "postal_code": None,
                        "state": None,
                    },
                    "email": email,
                    "name": parts.full,
                    "phone": None,
                    "verified_address": {
                        "city": None,
                        "country": None,
                        "line1": None,
                        "line2": None,
                        "postal_code": None,
                        "state": None,
                    },
                    "verified_email": None,
                    "verified_name": None,
                    "verified_phone": None,
                },
                "statement_descriptor": None,
                "status": "consumed",
                "type": "card",
                "usage": "single_use",
            },
        }

    def _stripe_refund(self, r: int) -> dict[str, Any]:
        table = self.tables[("stripe", "refunds")]
        reason = MALFORMED_REASONS[int(table.malformed[r])]
        donation = int(self.refund_donation[r])
        amount: Any = int(self.donation_amount[donation])
        currency: Any = CURRENCIES[int(self.donation_currency[donation])]
        status = "succeeded"
        if reason == "negative_amount":
            amount = -amount
        elif reason == "unknown_currency":
            currency = "xyz"
        elif reason == "unknown_enum":
            status = "vanished"
        return {
            "id": stripe_id("re", self._tags["re"], r),
            "object": "refund",
            "amount": amount,
            "balance_transaction": stripe_id("txn", self._tags["txn"], self.donations + r),
            "charge": None if reason == "missing_required" else stripe_id("ch", self._tags["ch"], donation),
            "created": int(table.created[r]),
            "currency": currency,
            "destination_details": {"card": {"type": "reversal"}, "type": "card"},
            "metadata": {"financial_transaction_id": self.financial_transaction_id(donation)},
            "payment_intent": None,
            "reason": "requested_by_customer",
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": status,
            "transfer_reversal": None,
            "customer": None,
            "customer_account": None,
            "payment_method": None,
        }

    def _stripe_balance_transaction(self, i: int) -> dict[str, Any]:
        table = self.tables[("stripe", "balance_transactions")]
        reason = MALFORMED_REASONS[int(table.malformed[i])]
        is_refund = i >= self.donations
        donation = int(self.refund_donation[i - self.donations]) if is_refund else i
        gross = int(self.donation_amount[donation])
        fee = 0 if is_refund else int(self.donation_fee[donation])
        amount: Any = -gross if is_refund else gross
        currency: Any = CURRENCIES[int(self.donation_currency[donation])]
        kind = "refund" if is_refund else "charge"
        created = int(table.created[i])
        source = (
            stripe_id("re", self._tags["re"], i - self.donations)
            if is_refund
            else stripe_id("ch", self._tags["ch"], donation)
        )
        net = amount - fee
        if reason == "non_numeric_amount":
            amount = str(amount)
        elif reason == "unknown_currency":
            currency = "xyz"
        elif reason == "unknown_enum":
            kind = "mystery"
        return {
            "id": stripe_id("txn", self._tags["txn"], i),
            "object": "balance_transaction",
            "amount": amount,
            "available_on": created + 2 * DAY,
            "created": created,
            "currency": currency,
            "description": "REFUND FOR CHARGE (Donation)" if is_refund else "Donation",
            "exchange_rate": None,
            "fee": fee,
            "fee_details": []
            if is_refund
            else [
                {
                    "amount": fee,
                    "application": None,
                    "currency": currency,
                    "description": "Stripe processing fees",
                    "type": "stripe_fee",
                }
            ],
            "net": net,
            "reporting_category": kind if kind != "mystery" else "mystery",
            "source": None if reason == "missing_required" else source,
            "status": "available" if created + 2 * DAY < self.end_ts else "pending",
            "type": kind,
            "balance_type": "payments",
        }

    # ---------------------------------------------------------------- Salesforce NPSP
    def _build_salesforce(self) -> None:
        rng = self.rng(4)
        donors = np.unique(self.donation_donor)
        in_crm = np.zeros(self.person_count, dtype=bool)
        in_crm[donors] = True
        # NPSP keeps the whole household: every member of a donor's household gets a Contact.
        in_crm |= np.isin(self.household, self.household[donors])
        in_crm[self.first_partner_contact :] = True
        crm_persons = np.nonzero(in_crm)[0]

        first_gift = np.full(self.person_count, self.end_ts, dtype=np.int64)
        np.minimum.at(first_gift, self.donation_donor, self.donation_created)
        contact_created = np.minimum(first_gift[crm_persons] - 3600, self.registered[crm_persons])
        contact_created = np.maximum(contact_created, self.start_ts)
        # Learners who donate often give under a nickname or another spelling: the cross-system duplicate.
        canonical_variant = np.where(
            (crm_persons < self.learners) & (rng.random(crm_persons.shape[0]) < 0.25),
            people.NICKNAME,
            people.CANONICAL,
        ).astype(np.int8)
        n_dups = int(round(self.duplicate_rate * 0.5 * crm_persons.shape[0]))
        dup_persons = (
            crm_persons[rng.integers(0, crm_persons.shape[0], n_dups)]
            if crm_persons.shape[0]
            else np.zeros(0, np.int64)
        )
        dup_variant = np.array(
            [
                (
                    kinds := people.available_variants(
                        int(self.culture[p]), int(self.given[p]), int(self.family[p])
                    )
                )[(int(self.salt[p]) + k) % len(kinds)]
                for k, p in enumerate(dup_persons.tolist())
            ],
            dtype=np.int8,
        )
        dup_created = self._between(rng, np.maximum(self.registered[dup_persons], self.start_ts))
        persons = np.concatenate([crm_persons, dup_persons]).astype(np.int32)
        variants = np.concatenate([canonical_variant, dup_variant]).astype(np.int8)
        created = np.concatenate([contact_created, dup_created]).astype(np.int64)
        order = np.argsort(created, kind="stable")
        persons, variants, created = persons[order], variants[order], created[order]
        contact_of_person = np.full(self.person_count, -1, np.int64)
        first_rows = np.unique(persons, return_index=True)
        contact_of_person[first_rows[0]] = first_rows[1]
        self.contact_of_person = contact_of_person

        households = np.unique(self.household[persons])
        account_of_household = np.full(int(self.household.max()) + 1, -1, np.int64)
        account_of_household[households] = np.arange(households.shape[0])
        self.account_of_household = account_of_household
        n_hh = households.shape[0]
        hh_created = np.full(n_hh, self.end_ts, np.int64)
        np.minimum.at(hh_created, account_of_household[self.household[persons]], created)
        org_created = self._uniform_times(rng, self.partners, self.start_ts - 200 * DAY, self.start_ts)
        account_created = np.concatenate([hh_created, org_created])
        self.account_households = households
        sf = self._tags["sf"]

        self._add(
            Table(
                "salesforce",
                "Account",
                "Id",
                "SystemModstamp",
                "modified",
                account_created,
                self._spread_edits(rng, account_created),
                np.full(account_created.shape[0], -1, np.int32),
                self._malformed(rng, account_created.shape[0], ("missing_required",)),
                builder=lambda i: self._sf_account(i),
                id_of=lambda i: salesforce_id("001", sf, i),
                index_of=salesforce_index,
            )
        )
        self._add(
            Table(
                "salesforce",
                "Contact",
                "Id",
                "SystemModstamp",
                "modified",
                created,
                self._spread_edits(rng, created),
                persons,
                self._malformed(
                    rng,
                    persons.shape[0],
                    ("missing_required", "malformed_email", "impossible_date", "unknown_enum"),
                ),
                builder=lambda i: self._sf_contact(i),
                id_of=lambda i: salesforce_id("003", sf, i),
                index_of=salesforce_index,
                columns={"variant": variants},
            )
        )

        opp_donation = np.nonzero(~self.missing_in_crm)[0]
        opp_created = self.donation_created[opp_donation] + rng.integers(60, 7200, opp_donation.shape[0])
        self._add(
            Table(
                "salesforce",
                "Opportunity",
                "Id",
                "SystemModstamp",
                "modified",
                opp_created,
                self._spread_edits(rng, opp_created),
                self.donation_donor[opp_donation],
                self._malformed(
                    rng,
                    opp_donation.shape[0],
                    (
                        "missing_required",
                        "negative_amount",
                        "non_numeric_amount",
                        "unknown_currency",
                        "impossible_date",
                        "unknown_enum",
                    ),
                ),
                builder=lambda i: self._sf_opportunity(i),
                id_of=lambda i: salesforce_id("006", sf, i),
                index_of=salesforce_index,
                columns={"donation": opp_donation},
            )
        )

        # Soft credits: a gift from one household member credited to another (NPSP partial soft credits).
        donors_of_opps = self.donation_donor[opp_donation]
        head = self.household_head[donors_of_opps]
        other = np.where(head != donors_of_opps, head, np.minimum(head + 1, self.person_count - 1))
        eligible = (
            (self.household_size[donors_of_opps] > 1)
            & (self.household[other] == self.household[donors_of_opps])
            & (contact_of_person[other] >= 0)
            & (rng.random(opp_donation.shape[0]) < 0.4)
        )
        soft_opps = np.nonzero(eligible)[0]
        soft_person = other[soft_opps]
        soft_created = opp_created[soft_opps] + 30
        self._add(
            Table(
                "salesforce",
                "npsp__Partial_Soft_Credit__c",
                "Id",
                "SystemModstamp",
                "modified",
                soft_created,
                self._spread_edits(rng, soft_created),
                soft_person.astype(np.int32),
                self._malformed(rng, soft_opps.shape[0], ("missing_required", "negative_amount")),
                builder=lambda i: self._sf_soft_credit(i),
                id_of=lambda i: salesforce_id("a0u", sf, i),
                index_of=salesforce_index,
                columns={"opportunity": soft_opps, "person": soft_person},
            )
        )

        n_opps = opp_donation.shape[0]
        role_opp = np.concatenate([np.arange(n_opps), soft_opps])
        role_person = np.concatenate([donors_of_opps, soft_person])
        role_created = np.concatenate([opp_created + 5, soft_created])
        self._add(
            Table(
                "salesforce",
                "OpportunityContactRole",
                "Id",
                "SystemModstamp",
                "modified",
                role_created,
                role_created.copy(),
                role_person.astype(np.int32),
                self._malformed(rng, role_created.shape[0], ("missing_required", "unknown_enum")),
                builder=lambda i: self._sf_contact_role(i),
                id_of=lambda i: salesforce_id("00K", sf, i),
                index_of=salesforce_index,
                columns={
                    "opportunity": role_opp,
                    "person": role_person,
                    "is_soft": np.arange(role_opp.shape[0]) >= n_opps,
                },
            )
        )

    def _sf_attributes(self, sobject: str, record_id: str) -> dict[str, str]:
        return {
            "type": sobject,
            "url": f"/services/data/{self.ids.salesforce_api_version}/sobjects/{sobject}/{record_id}",
        }

    def _sf_account(self, i: int) -> dict[str, Any]:
        table = self.tables[("salesforce", "Account")]
        record_id = salesforce_id("001", self._tags["sf"], i)
        n_hh = self.account_households.shape[0]
        if i < n_hh:
            head = int(self.household_head[np.searchsorted(self.household, self.account_households[i])])
            name = f"{self.name(head).family or self.name(head).given} Household"
            record_type, account_type = "012HH0000000001AAA", "Household Account"
        else:
            name = PARTNER_NAMES[i - n_hh]
            record_type, account_type = "012OR0000000001AAA", ""
        if table.malformed[i]:
            name = None
        return {
            "attributes": self._sf_attributes("Account", record_id),
            "Id": record_id,
            "Name": name,
            "RecordTypeId": record_type,
            "npe01__SYSTEM_AccountType__c": account_type or None,
            "Type": "Household" if account_type else "Partner Organization",
            "IsDeleted": False,
            "CreatedDate": salesforce_datetime(int(table.created[i])),
            "LastModifiedDate": salesforce_datetime(int(table.modified[i])),
            "SystemModstamp": salesforce_datetime(int(table.modified[i])),
        }

    def _sf_contact(self, i: int) -> dict[str, Any]:
        table = self.tables[("salesforce", "Contact")]
        record_id = salesforce_id("003", self._tags["sf"], i)
        person = int(table.person[i])
        variant = int(table.columns["variant"][i])
        reason = MALFORMED_REASONS[int(table.malformed[i])]
        parts = self.name(person, variant)
        email = self.email(person, variant)
        if reason == "malformed_email":
            email = people.break_email(email, i)
        first: str | None = None if parts.single else parts.given
        last: str | None = parts.given if parts.single else parts.family
        if reason == "missing_required":
            last = None
        birth = (
            impossible_date(int(table.created[i])) if reason == "impossible_date" else self.birth_date(person)
        )
        account = self._contact_account(person)
        return {
            "attributes": self._sf_attributes("Contact", record_id),
            "Id": record_id,
            "AccountId": account,
            "FirstName": first,
            "LastName": last,
            "Email": email,
            "npe01__HomeEmail__c": email,
            "npe01__WorkEmail__c": None,
            "npe01__AlternateEmail__c": None,
            "npe01__Preferred_Email__c": "Carrier pigeon" if reason == "unknown_enum" else "Personal",
            "Phone": self.phone(person),
            "MobilePhone": None,
            "Birthdate": birth,
            "MailingCountry": self.country_code(person),
            "HasOptedOutOfEmail": not bool(self.marketing_opt_in[person]),
            "npsp__Deceased__c": False,
            "IsDeleted": False,
            "CreatedDate": salesforce_datetime(int(table.created[i])),
            "LastModifiedDate": salesforce_datetime(int(table.modified[i])),
            "SystemModstamp": salesforce_datetime(int(table.modified[i])),
        }

    def _contact_account(self, person: int) -> str:
        if person >= self.first_partner_contact:
            return salesforce_id(
                "001", self._tags["sf"], self.account_households.shape[0] + int(self.partner[person])
            )
        return salesforce_id("001", self._tags["sf"], int(self.account_of_household[self.household[person]]))

    def _sf_opportunity(self, i: int) -> dict[str, Any]:
        table = self.tables[("salesforce", "Opportunity")]
        record_id = salesforce_id("006", self._tags["sf"], i)
        donation = int(table.columns["donation"][i])
        reason = MALFORMED_REASONS[int(table.malformed[i])]
        donor = int(self.donation_donor[donation])
        contact_row = int(self.contact_of_person[donor])
        contact_id = salesforce_id("003", self._tags["sf"], contact_row)
        parts = self.name(donor, int(self.tables[("salesforce", "Contact")].columns["variant"][contact_row]))
        account_id = self._contact_account(donor)
        amount: Any = crm_amount(self, donation) / 100
        currency: Any = CURRENCIES[int(self.donation_currency[donation])].upper()
        close = iso_date(int(self.donation_created[donation]))
        stage = "Closed Won"
        if reason == "negative_amount":
            amount = -amount
        elif reason == "non_numeric_amount":
            amount = f"{amount:.2f} {currency}"
        elif reason == "unknown_currency":
            currency = "XYZ"
        elif reason == "impossible_date":
            close = impossible_date(int(self.donation_created[donation]))
        elif reason == "unknown_enum":
            stage = "Maybe Won"
        return {
            "attributes": self._sf_attributes("Opportunity", record_id),
            "Id": record_id,
            "Name": f"{parts.full} Donation {close}",
            "AccountId": account_id,
            "npsp__Primary_Contact__c": contact_id,
            "Amount": amount,
            "CurrencyIsoCode": currency,
            "CloseDate": close,
            "StageName": stage,
            "IsWon": True,
            "IsClosed": True,
            "RecordTypeId": "012DO0000000001AAA",
            "Financial_Transaction_Id__c": None
            if reason == "missing_required"
            else self.financial_transaction_id(donation),
            "Stripe_Charge_Id__c": stripe_id("ch", self._tags["ch"], donation),
            "IsDeleted": False,
            "CreatedDate": salesforce_datetime(int(table.created[i])),
            "LastModifiedDate": salesforce_datetime(int(table.modified[i])),
            "SystemModstamp": salesforce_datetime(int(table.modified[i])),
        }

    def _sf_soft_credit(self, i: int) -> dict[str, Any]:
        table = self.tables[("salesforce", "npsp__Partial_Soft_Credit__c")]
        record_id = salesforce_id("a0u", self._tags["sf"], i)
        opp = int(table.columns["opportunity"][i])
        donation = int(self.tables[("salesforce", "Opportunity")].columns["donation"][opp])
        reason = MALFORMED_REASONS[int(table.malformed[i])]
        amount = int(self.donation_amount[donation]) / 100
        contact = salesforce_id(
            "003", self._tags["sf"], int(self.contact_of_person[int(table.columns["person"][i])])
        )
        return {
            "attributes": self._sf_attributes("npsp__Partial_Soft_Credit__c", record_id),
            "Id": record_id,
            "Name": f"PSC-{i + 1:06d}",
            "npsp__Opportunity__c": salesforce_id("006", self._tags["sf"], opp),
            "npsp__Contact__c": None if reason == "missing_required" else contact,
            "npsp__Amount__c": -amount if reason == "negative_amount" else amount,
            "npsp__Role_Name__c": "Household Member",
            "CurrencyIsoCode": CURRENCIES[int(self.donation_currency[donation])].upper(),
            "IsDeleted": False,
            "CreatedDate": salesforce_datetime(int(table.created[i])),
            "LastModifiedDate": salesforce_datetime(int(table.modified[i])),
            "SystemModstamp": salesforce_datetime(int(table.modified[i])),
        }

    def _sf_contact_role(self, i: int) -> dict[str, Any]:
        table = self.tables[("salesforce", "OpportunityContactRole")]
        record_id = salesforce_id("00K", self._tags["sf"], i)
        reason = MALFORMED_REASONS[int(table.malformed[i])]
        soft = bool(table.columns["is_soft"][i])
        contact = salesforce_id(
            "003", self._tags["sf"], int(self.contact_of_person[int(table.columns["person"][i])])
        )
        role = "Household Member" if soft else "Donor"
        return {
            "attributes": self._sf_attributes("OpportunityContactRole", record_id),
            "Id": record_id,
            "OpportunityId": salesforce_id("006", self._tags["sf"], int(table.columns["opportunity"][i])),
            "ContactId": None if reason == "missing_required" else contact,
            "Role": "Frenemy" if reason == "unknown_enum" else role,
            "IsPrimary": not soft,
            "IsDeleted": False,
            "CreatedDate": salesforce_datetime(int(table.created[i])),
            "LastModifiedDate": salesforce_datetime(int(table.modified[i])),
            "SystemModstamp": salesforce_datetime(int(table.modified[i])),
        }

    # ---------------------------------------------------------------- surveys
    def _build_surveys(self) -> None:
        rng = self.rng(5)
        n_zig = int(self.survey_responses * 0.6)
        n_tf = self.survey_responses - n_zig
        n_participants = max(1, (n_zig * 2) // 3) if n_zig else 0
        participant_person = rng.integers(0, self.learners, n_participants).astype(np.int32)
        participant_created = self._between(rng, self.registered[participant_person], skew=2.0)
        order = np.argsort(participant_created, kind="stable")
        participant_person, participant_created = participant_person[order], participant_created[order]
        tags = self._tags
        self._add(
            Table(
                "zigpoll",
                "participants",
                "_id",
                "createdAt",
                "created",
                participant_created,
                participant_created.copy(),
                participant_person,
                self._malformed(rng, n_participants, ("malformed_email", "unknown_enum")),
                builder=lambda i: self._zigpoll_participant(i),
                id_of=lambda i: mongo_id(tags["zig_part"], i),
                index_of=lambda rid: mongo_index(rid, tags["zig_part"]),
                columns={"consent_research": rng.random(n_participants) < 0.85},
            )
        )
        response_participant = rng.integers(0, max(n_participants, 1), n_zig)
        response_created = self._between(
            rng,
            participant_created[response_participant] if n_participants else np.full(n_zig, self.start_ts),
            skew=3.0,
        )
        order = np.argsort(response_created, kind="stable")
        response_participant, response_created = response_participant[order], response_created[order]
        self._add(
            Table(
                "zigpoll",
                "responses",
                "_id",
                "createdAt",
                "created",
                response_created,
                response_created.copy(),
                participant_person[response_participant] if n_participants else np.zeros(0, np.int32),
                self._malformed(rng, n_zig, ("missing_required",)),
                builder=lambda i: self._zigpoll_response(i),
                id_of=lambda i: mongo_id(tags["zig_resp"], i),
                index_of=lambda rid: mongo_index(rid, tags["zig_resp"]),
                columns={
                    "participant": response_participant,
                    "has_age": rng.random(n_zig) > 0.15,
                    "score": rng.integers(1, 6, n_zig),
                },
            )
        )

        tf_person = rng.integers(0, self.learners, n_tf).astype(np.int32)
        tf_submitted = self._between(rng, self.registered[tf_person], skew=2.0)
        order = np.argsort(tf_submitted, kind="stable")
        tf_person, tf_submitted = tf_person[order], tf_submitted[order]
        self._add(
            Table(
                "typeform",
                "responses",
                "response_id",
                "submitted_at",
                "created",
                tf_submitted,
                tf_submitted.copy(),
                tf_person,
                self._malformed(rng, n_tf, ("missing_required", "malformed_email")),
                builder=lambda i: self._typeform_response(i),
                id_of=lambda i: typeform_token(tags["tf"], i),
                index_of=lambda rid: typeform_index(rid, tags["tf"]),
                columns={
                    "has_age": rng.random(n_tf) > 0.15,
                    "score": rng.integers(0, 11, n_tf),
                    "consent": rng.random(n_tf) < 0.8,
                },
            )
        )

    def _zigpoll_participant(self, i: int) -> dict[str, Any]:
        table = self.tables[("zigpoll", "participants")]
        person = int(table.person[i])
        reason = MALFORMED_REASONS[int(table.malformed[i])]
        email = self.email(person)
        if reason == "malformed_email":
            email = people.break_email(email, i)
        created = iso_z(int(table.created[i]))
        return {
            "_id": mongo_id(self._tags["zig_part"], i),
            "createdAt": created,
            "accountId": self.ids.zigpoll_account_id,
            "email": email,
            "metadata": {"moodle_user_id": str(int(self._moodle_user_row_of_person[person]) + 3)},
            "consent": {
                "status": "perhaps"
                if reason == "unknown_enum"
                else ("granted" if table.columns["consent_research"][i] else "declined"),
                "purposes": ["research", "follow_up"] if table.columns["consent_research"][i] else [],
                "collectedAt": created,
                "method": "consent_slide",
                "policyVersion": "2024-01",
            },
        }

    def _zigpoll_response(self, i: int) -> dict[str, Any]:
        table = self.tables[("zigpoll", "responses")]
        person = int(table.person[i])
        participant = int(table.columns["participant"][i])
        reason = MALFORMED_REASONS[int(table.malformed[i])]
        metadata: dict[str, Any] = {"course": COURSE_TOPICS[int(self.salt[person]) % len(COURSE_TOPICS)]}
        if table.columns["has_age"][i]:
            metadata["age"] = int(self.age_years(np.array([person]), int(table.created[i]))[0])
        score = int(table.columns["score"][i])
        return {
            "_id": mongo_id(self._tags["zig_resp"], i),
            "createdAt": iso_z(int(table.created[i])),
            "accountId": self.ids.zigpoll_account_id,
            "pollId": self.ids.zigpoll_poll_id,
            "slideId": "64a1f0c2e4b0a1b2c3d4e600",
            "participantId": None
            if reason == "missing_required"
            else mongo_id(self._tags["zig_part"], participant),
            "orderValue": score,
            "response": f"{score} - {('Poor', 'Fair', 'Good', 'Great', 'Excellent')[score - 1]}",
            "slideTitle": "How much did this course improve your skills?",
            "slideType": "rating",
            "metadata": metadata,
        }

    def _typeform_response(self, i: int) -> dict[str, Any]:
        table = self.tables[("typeform", "responses")]
        person = int(table.person[i])
        reason = MALFORMED_REASONS[int(table.malformed[i])]
        token = typeform_token(self._tags["tf"], i)
        submitted = int(table.created[i])
        email = self.email(person)
        if reason == "malformed_email":
            email = people.break_email(email, i)
        answers: list[dict[str, Any]] = [
            {
                "field": {"id": "Q1rating", "type": "opinion_scale", "ref": "skills_improved"},
                "type": "number",
                "number": int(table.columns["score"][i]),
            },
            {"field": {"id": "Q2email", "type": "email", "ref": "email"}, "type": "email", "email": email},
            {
                "field": {"id": "Q3consent", "type": "yes_no", "ref": "may_contact"},
                "type": "boolean",
                "boolean": bool(table.columns["consent"][i]),
            },
        ]
        if table.columns["has_age"][i]:
            answers.append(
                {
                    "field": {"id": "Q4age", "type": "number", "ref": "age"},
                    "type": "number",
                    "number": int(self.age_years(np.array([person]), submitted)[0]),
                }
            )
        moodle_row = int(self._moodle_user_row_of_person[person])
        return {
            "landing_id": token,
            "token": token,
            "response_id": token,
            "landed_at": iso_z(submitted - 40 - int(self.salt[person]) % 600),
            "submitted_at": iso_z(submitted),
            "metadata": {
                "user_agent": "Mozilla/5.0",
                "platform": "other",
                "referer": f"https://example.typeform.com/to/{self.ids.typeform_form_id}",
                "network_id": token[:10],
                "browser": "default",
            },
            "hidden": {"learner_id": "" if reason == "missing_required" else str(moodle_row + 3)},
            "calculated": {"score": 0},
            "answers": answers,
        }

    # ---------------------------------------------------------------- ReferralHero
    def _build_referrals(self) -> None:
        rng = self.rng(6)
        n = min(self.referral_subscribers, self.learners)
        subscriber_person = rng.permutation(self.learners)[:n].astype(np.int32)
        created = np.maximum(self.registered[subscriber_person] - rng.integers(0, 3 * DAY, n), self.start_ts)
        order = np.argsort(created, kind="stable")
        subscriber_person, created = subscriber_person[order], created[order]
        referred = (rng.random(n) < 0.35) & (np.arange(n) > 0)
        referrer = np.where(referred, (rng.random(n) * np.arange(n)).astype(np.int64), -1)
        people_referred = np.bincount(referrer[referrer >= 0], minlength=n)
        clicks = people_referred * rng.integers(1, 6, n) + rng.integers(0, 10, n)
        tags = self._tags
        self._add(
            Table(
                "referralhero",
                "subscribers",
                "id",
                "created_at",
                "created",
                created,
                created.copy(),
                subscriber_person,
                self._malformed(rng, n, ("missing_required", "malformed_email", "unknown_enum")),
                builder=lambda i: self._referral_subscriber(i),
                id_of=lambda i: f"sub_{tags['rh'][:4].lower()}{i:08x}",
                index_of=lambda rid: _hex_suffix(rid, f"sub_{tags['rh'][:4].lower()}"),
                columns={"referrer": referrer, "people_referred": people_referred, "clicks": clicks},
            )
        )

    def _referral_subscriber(self, i: int) -> dict[str, Any]:
        table = self.tables[("referralhero", "subscribers")]
        person = int(table.person[i])
        reason = MALFORMED_REASONS[int(table.malformed[i])]
        email: str | None = self.email(person)
        if reason == "malformed_email":
            email = people.break_email(email, i)
        elif reason == "missing_required":
            email = None
        referrer = int(table.columns["referrer"][i])
        referred_by = None
        if referrer >= 0:
            referrer_person = int(table.person[referrer])
            referred_by = {
                "id": table.id_of(referrer),
                "name": self.name(referrer_person).full,
                "email": self.email(referrer_person),
                "code": f"{self.ids.referralhero_list_uuid[2:6]}{referrer:06d}",
            }
        count = int(table.columns["people_referred"][i])
        created = int(table.created[i])
        rewards = [
            {
                "id": 100 + level,
                "name": name,
                "status": "delivered",
                "created_at": created + (level + 1) * DAY,
            }
            for level, (threshold, name) in enumerate(((3, "Free certificate"), (10, "Mentor session")))
            if count >= threshold
        ]
        return {
            "id": table.id_of(i),
            "name": self.name(person).full,
            "email": email,
            "phone_number": None,
            "extra_field": "",
            "extra_field_2": "",
            "code": f"{self.ids.referralhero_list_uuid[2:6]}{i:06d}",
            "position": i + 1,
            "referred": referrer >= 0,
            "referral_value": 0,
            "referral_category": "learner",
            "transaction_id": None,
            "referred_by": referred_by,
            "people_referred": count,
            "level_2_confirmed_referrals": 0,
            "level_3_confirmed_referrals": 0,
            "promoted": False,
            "promoted_at": None,
            "verified": True,
            "verified_at": created + 600,
            "status": "invented"
            if reason == "unknown_enum"
            else ("confirmed" if referrer >= 0 else "organic"),
            "points": count * 10,
            "unique_clicks": int(table.columns["clicks"][i]),
            "rewards": rewards,
            "created_at": created,
            "source": "direct",
            "device": "desktop",
            "risk_level": 0,
        }

    # ---------------------------------------------------------------- finance ledger
    def _build_ledger(self) -> None:
        rng = self.rng(7)
        posted = ~self.missing_in_ledger
        donations = np.nonzero(posted)[0]
        refunds = np.nonzero(posted[self.refund_donation])[0]
        # Each gift posts as gross contribution plus processing fee; each refund as a reversal.
        kinds = np.concatenate(
            [
                np.zeros(donations.shape[0], np.int8),
                np.ones(donations.shape[0], np.int8),
                np.full(refunds.shape[0], 2, np.int8),
            ]
        )
        refs = np.concatenate([donations, donations, refunds])
        at = np.concatenate(
            [self.donation_created[donations], self.donation_created[donations], self.refund_created[refunds]]
        )
        posting_day = (at // DAY) * DAY
        order = np.lexsort((kinds, refs, posting_day))
        kinds, refs, posting_day = kinds[order], refs[order], posting_day[order]
        donation_of_row = refs.copy()
        if self.refund_donation.shape[0]:
            donation_of_row[kinds == 2] = self.refund_donation[refs[kinds == 2]]
        persons = self.donation_donor[donation_of_row]
        self._add(
            Table(
                "ledger",
                "postings",
                "reference",
                "posting_date",
                "created",
                posting_day.astype(np.int64),
                posting_day.astype(np.int64),
                persons.astype(np.int32),
                self._malformed(
                    rng,
                    kinds.shape[0],
                    ("missing_required", "negative_amount", "non_numeric_amount", "unknown_currency"),
                ),
                builder=lambda i: self._ledger_row(i),
                id_of=lambda i: self._ledger_reference(i),
                index_of=lambda rid: self._ledger_index(rid),
                columns={"kind": kinds, "ref": refs},
            )
        )

    def _ledger_reference(self, i: int) -> str:
        table = self.tables[("ledger", "postings")]
        kind, ref = int(table.columns["kind"][i]), int(table.columns["ref"][i])
        if kind == 0:
            return stripe_id("ch", self._tags["ch"], ref)
        if kind == 1:
            return stripe_id("txn", self._tags["txn"], ref)
        return stripe_id("re", self._tags["re"], ref)

    def _ledger_index(self, reference: str) -> int | None:
        if not hasattr(self, "_ledger_lookup"):
            table = self.tables[("ledger", "postings")]
            self._ledger_lookup = {self._ledger_reference(i): i for i in range(len(table))}
        return self._ledger_lookup.get(reference)

    def _ledger_row(self, i: int) -> dict[str, Any]:
        table = self.tables[("ledger", "postings")]
        kind, ref = int(table.columns["kind"][i]), int(table.columns["ref"][i])
        reason = MALFORMED_REASONS[int(table.malformed[i])]
        donation = int(self.refund_donation[ref]) if kind == 2 else ref
        gross = int(self.donation_amount[donation])
        if kind == 0 and self.ledger_amount_typo[donation]:
            gross *= 10  # a keying error: 40.00 posted as 400.00
        minor = {0: gross, 1: -int(self.donation_fee[donation]), 2: -gross}[kind]
        amount = f"{minor / 100:.2f}"
        currency = CURRENCIES[int(self.donation_currency[donation])].upper()
        transaction_id = self.financial_transaction_id(donation)
        if reason == "negative_amount":
            amount = f"{-abs(minor) / 100:.2f}" if kind == 0 else f"{abs(minor) / 100:.2f}"
        elif reason == "non_numeric_amount":
            amount = "n/a"
        elif reason == "unknown_currency":
            currency = "XYZ"
        elif reason == "missing_required":
            transaction_id = ""
        return {
            "transaction_id": transaction_id,
            "posting_date": iso_date(int(table.created[i])),
            "account": ("4000 Contributions", "6100 Payment processing fees", "4000 Contributions")[kind],
            "amount": amount,
            "currency": currency,
            "reference": self._ledger_reference(i),
        }

    LEDGER_COLUMNS = ("transaction_id", "posting_date", "account", "amount", "currency", "reference")

    def write_ledger_drop(self, folder: str | Path, month: str) -> Path:
        """Write the finance export for one month ("2024-03") as the ledger system drops it: one CSV."""
        year, mon = (int(part) for part in month.split("-"))
        since = to_epoch(date(year, mon, 1))
        until = to_epoch(date(year + (mon == 12), mon % 12 + 1, 1))
        path = Path(folder) / f"ledger_{year:04d}-{mon:02d}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.LEDGER_COLUMNS)
            writer.writeheader()
            for record in self.records("ledger", "postings", since, until):
                writer.writerow(record)
        return path

    def ledger_months(self) -> list[str]:
        first = datetime.fromtimestamp(self.start_ts, UTC)
        last = datetime.fromtimestamp(self.end_ts - 1, UTC)
        months, year, mon = [], first.year, first.month
        while (year, mon) <= (last.year, last.month):
            months.append(f"{year:04d}-{mon:02d}")
            year, mon = year + (mon == 12), mon % 12 + 1
        return months

    def ledger_truth(self) -> LedgerTruth:
        ids = {
            "missing_in_crm": tuple(
                self.financial_transaction_id(int(d)) for d in np.nonzero(self.missing_in_crm)[0]
            ),
            "missing_in_ledger": tuple(
                self.financial_transaction_id(int(d)) for d in np.nonzero(self.missing_in_ledger)[0]
            ),
            "ledger_amount_mismatch": tuple(
                self.financial_transaction_id(int(d)) for d in np.nonzero(self.ledger_amount_typo)[0]
            ),
        }
        month_of = np.array([iso_date(int(t))[:7] for t in self.donation_created])
        stripe_gross: dict[str, dict[str, int]] = {}
        for month, currency, amount in zip(
            month_of.tolist(), self.donation_currency.tolist(), self.donation_amount.tolist(), strict=True
        ):
            bucket = stripe_gross.setdefault(month, {})
            bucket[CURRENCIES[currency]] = bucket.get(CURRENCIES[currency], 0) + amount
        ledger_net: dict[str, dict[str, int]] = {}
        for record in self.records("ledger", "postings"):
            try:
                minor = round(float(record["amount"]) * 100)
            except ValueError:
                continue
            bucket = ledger_net.setdefault(record["posting_date"][:7], {})
            currency = record["currency"].lower()
            bucket[currency] = bucket.get(currency, 0) + minor
        return LedgerTruth(ids, ledger_net, stripe_gross)


# ---------------------------------------------------------------- vendor id formats
def stripe_id(prefix: str, seed_tag: str, index: int) -> str:
    """Stripe-shaped id (prefix + 24 chars) that encodes the row index in its last 8 characters."""
    return f"{prefix}_3{seed_tag[:15]}{base62(index, 8)}"


def stripe_index(record_id: Any, prefix: str, seed_tag: str) -> int | None:
    if not isinstance(record_id, str) or not record_id.startswith(f"{prefix}_3{seed_tag[:15]}"):
        return None
    try:
        return unbase62(record_id[-8:])
    except KeyError:
        return None


def mongo_id(seed_tag: str, index: int) -> str:
    hex_tag = "".join(f"{ord(c) % 16:x}" for c in seed_tag[:16])
    return f"{hex_tag[:8]}{index:08x}{hex_tag[8:16]}"


def mongo_index(record_id: Any, seed_tag: str) -> int | None:
    try:
        return int(str(record_id)[8:16], 16)
    except ValueError:
        return None


def typeform_token(seed_tag: str, index: int) -> str:
    return f"{seed_tag[:20].lower()}{index:012x}"


def typeform_index(record_id: Any, seed_tag: str) -> int | None:
    try:
        return int(str(record_id)[20:], 16)
    except ValueError:
        return None


def _int_or_none(value: Any, offset: int) -> int | None:
    try:
        return int(value) + offset
    except (TypeError, ValueError):
        return None


def _hex_suffix(value: Any, prefix: str) -> int | None:
    text = str(value)
    if not text.startswith(prefix):
        return None
    try:
        return int(text[len(prefix) :], 16)
    except ValueError:
        return None
