"""Completers of a week, built straight into the warehouse with the truth kept beside them: who may be asked
for surveys (computed here from how each person was made, not from the warehouse's views), which course each
completed first, and an independent Python re-computation of the draw."""

from __future__ import annotations

import hashlib
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import psycopg

#: Kinds of people, with their share: whether each may be asked for surveys follows from how it is made.
KINDS = (
    ("adult_consented", 0.70, True),
    ("minor_without_parental_consent", 0.05, False),
    ("minor_with_verified_parental_consent", 0.04, True),
    ("unknown_age", 0.04, False),
    ("withdrew_survey_consent", 0.05, False),
    ("consented_to_course_messages_only", 0.04, False),
    ("refused_surveys", 0.03, False),
    ("adult_consented_late", 0.05, True),
)
ELIGIBLE_KINDS = {kind for kind, _share, eligible in KINDS if eligible}


@dataclass
class Completer:
    person_id: str
    kind: str
    course_id: str  # the first course completed in the week
    completion_id: str
    enrolled_at: datetime


@dataclass
class Week:
    week: date
    completers: dict[str, Completer] = field(default_factory=dict)
    courses: dict[str, str] = field(default_factory=dict)  # name -> course_id

    @property
    def eligible(self) -> set[str]:
        return {pid for pid, c in self.completers.items() if c.kind in ELIGIBLE_KINDS}


def _years_ago(years: int) -> date:
    today = date.today()
    return date(today.year - years, 1, 1) - timedelta(days=1) if years else today


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def add_courses(
    conn: psycopg.Connection, names: list[str], rng: random.Random | None = None
) -> dict[str, str]:
    courses = {}
    for name in names:
        course_id = _uuid(rng) if rng else str(uuid.uuid4())
        conn.execute(
            "INSERT INTO core.course (course_id, source, source_record_id, title) VALUES (%s, 'moodle', %s, %s)",
            (course_id, f"course-{course_id[:8]}", name),
        )
        courses[name] = course_id
    return courses


def build_week(
    conn: psycopg.Connection,
    week: date,
    sizes: dict[str, int],
    *,
    seed: int,
    courses: dict[str, str] | None = None,
    people: list[tuple[str, str]] | None = None,
) -> Week:
    """``sizes[name]`` people complete course ``name`` in ``week``: new people (ids drawn from ``seed``: the same
    seed builds the same people) unless ``people`` [(person_id, kind)] are given to reuse. Everybody stated
    their consent a year ago."""
    rng = random.Random(seed)
    courses = courses or add_courses(conn, list(sizes), rng)
    built = Week(week, courses=dict(courses))
    start = datetime(week.year, week.month, week.day, tzinfo=UTC)
    reuse = list(people or [])
    persons, consents, enrollments, completions = [], [], [], []
    for name, size in sizes.items():
        for _ in range(size):
            if reuse:
                person_id, kind = reuse.pop()
            else:
                person_id = _uuid(rng)
                draw, kind = rng.random(), KINDS[-1][0]
                for candidate, share, _eligible in KINDS:
                    if draw < share:
                        kind = candidate
                        break
                    draw -= share
                born = (None if kind == "unknown_age"
                        else _years_ago(rng.randint(9, 11)) if kind.startswith("minor")
                        else _years_ago(rng.randint(20, 60)))  # fmt: skip
                persons.append((person_id, born, f"{person_id[:12]}@example.org"))
                stated = start - timedelta(days=365)
                purpose = "course_messages" if kind == "consented_to_course_messages_only" else "surveys"
                status = {"minor_with_verified_parental_consent": "parental_consent_verified",
                          "refused_surveys": "refused"}.get(kind, "given")  # fmt: skip
                consents.append((person_id, purpose, status, stated))
                if kind == "withdrew_survey_consent":
                    consents.append((person_id, "surveys", "withdrawn", stated + timedelta(days=30)))
            enrolled_at = start - timedelta(days=rng.randint(20, 200))
            completed_at = start + timedelta(seconds=rng.randint(0, 7 * 86400 - 1))
            enrollment_id, completion_id = str(uuid.uuid4()), str(uuid.uuid4())
            enrollments.append((enrollment_id, person_id, courses[name], enrolled_at))
            completions.append((completion_id, person_id, courses[name], enrollment_id, completed_at))
            first = built.completers.get(person_id)
            key = (completed_at, courses[name])
            if first is None or key < first._key:  # type: ignore[attr-defined]
                completer = Completer(person_id, kind, courses[name], completion_id, enrolled_at)
                completer._key = key  # type: ignore[attr-defined]
                built.completers[person_id] = completer
    with conn.cursor() as cur:
        with cur.copy(
            "COPY core.person (person_id, given_name, family_name, date_of_birth, email, email_normalized,"
            " country, jurisdiction, is_learner) FROM STDIN"
        ) as copy:
            for person_id, born, email in persons:
                copy.write_row((person_id, "Sam", "Doe", born, email, email, "US", "US", True))
        with cur.copy(
            "COPY core.consent (person_id, purpose, status, lawful_basis, source, source_record_id,"
            " stated_at, given_by, parental_method) FROM STDIN"
        ) as copy:
            for person_id, purpose, status, stated in consents:
                verified = status == "parental_consent_verified"
                copy.write_row(
                    (
                        person_id,
                        purpose,
                        status,
                        "consent",
                        "moodle",
                        str(uuid.uuid4()),
                        stated,
                        "parent" if verified else None,
                        "signed form" if verified else None,
                    )
                )
        with cur.copy(
            "COPY core.enrollment (enrollment_id, person_id, course_id, enrolled_at, source,"
            " source_record_id) FROM STDIN"
        ) as copy:
            for enrollment_id, person_id, course_id, enrolled_at in enrollments:
                copy.write_row((enrollment_id, person_id, course_id, enrolled_at, "moodle", enrollment_id))
        with cur.copy(
            "COPY core.course_completion (completion_id, person_id, course_id, enrollment_id,"
            " completed_at, source, source_record_id) FROM STDIN"
        ) as copy:
            for completion_id, person_id, course_id, enrollment_id, completed_at in completions:
                copy.write_row(
                    (
                        completion_id,
                        person_id,
                        course_id,
                        enrollment_id,
                        completed_at,
                        "moodle",
                        completion_id,
                    )
                )
    return built


def also_complete(
    conn: psycopg.Connection, built: Week, person_ids: list[str], course_id: str, *, before_first: bool
) -> None:
    """These people complete a second course the same week, just before (or after) their first."""
    for person_id in person_ids:
        first = built.completers[person_id]
        at = first._key[0] + timedelta(seconds=-1 if before_first else 1)  # type: ignore[attr-defined]
        completion_id = str(uuid.uuid4())
        conn.execute(
            "INSERT INTO core.course_completion (completion_id, person_id, course_id, completed_at, source,"
            " source_record_id) VALUES (%s, %s, %s, %s, 'moodle', %s)",
            (completion_id, person_id, course_id, at, completion_id),
        )
        if before_first:
            built.completers[person_id] = Completer(
                person_id, first.kind, course_id, completion_id, first.enrolled_at
            )


# ------------------------------------------------------------------------------------------------------
# The draw, recomputed: same rules as ops.draw_survey_sample, written again from its description.
# ------------------------------------------------------------------------------------------------------
def seed_of(survey_key: str, week: date) -> str:
    return hashlib.sha256(f"{survey_key}|{week.isoformat()}".encode()).hexdigest()


def expected_sample(
    frame: dict[str, str], survey_key: str, week: date, fraction: float
) -> dict[str, set[str]]:
    """course_id -> the people drawn, from ``frame`` (person_id -> course_id)."""
    seed = seed_of(survey_key, week)
    total = len(frame)
    if not total:
        return {}
    n = int((Decimal(str(fraction)) * total).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    strata: dict[str, list[str]] = {}
    for person_id, course_id in frame.items():
        strata.setdefault(course_id, []).append(person_id)
    quotas = {course: Fraction(len(people) * n, total) for course, people in strata.items()}
    sizes = {course: int(quota) for course, quota in quotas.items()}
    seats = n - sum(sizes.values())
    order = sorted(
        quotas, key=lambda c: (-(quotas[c] - int(quotas[c])), hashlib.sha256((seed + c).encode()).digest())
    )
    for course in order[:seats]:
        sizes[course] += 1
    return {
        course: set(
            sorted(people, key=lambda p: (hashlib.sha256((seed + p).encode()).digest(), p))[: sizes[course]]
        )
        for course, people in strata.items()
    }
