"""The KPI marts against the generator's truth, computed here from the sandbox tables, month by month."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import psycopg
import pytest

from cdp.migration import legacy_cleanup, legacy_import, legacy_profile
from cdp.migration.platforms import KPI_MARTS, mart_problems
from cdp.warehouse import Actor
from cdp_sandbox import volunteers
from cdp_sandbox.generator import World
from cdp_sandbox.legacy import UNFIXABLE, write_exports
from cdp_sandbox.server import SandboxServer
from cdp_sandbox.truth import sync_sandbox

STREAMS = [
    "moodle.users", "moodle.courses", "moodle.enrollments", "moodle.course_completions", "stripe.charges",
    "galaxy.users",
]  # fmt: skip
DAY = 86_400


def _month(ts: int) -> date:
    moment = datetime.fromtimestamp(ts, UTC)
    return date(moment.year, moment.month, 1)


def _next(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _epoch(month: date) -> int:
    return int(datetime(month.year, month.month, 1, tzinfo=UTC).timestamp())


def _months(first: date, last: date) -> list[date]:
    out = [first]
    while out[-1] < last:
        out.append(_next(out[-1]))
    return out


def _mart(url: str, name: str) -> dict[date, tuple[int, int, Decimal | None]]:
    with psycopg.connect(url) as conn:
        return {
            month: (int(numerator), int(denominator), value)
            for month, numerator, denominator, value in conn.execute(
                f"SELECT month, numerator, denominator, value FROM {name} ORDER BY month"  # noqa: S608 - fixed names
            )
        }


def _expected(
    counts: dict[date, tuple[int, int]], months: list[date]
) -> dict[date, tuple[int, int, Decimal | None]]:
    out = {}
    for month in months:
        numerator, denominator = counts.get(month, (0, 0))
        out[month] = (
            numerator,
            denominator,
            Decimal(numerator) / Decimal(denominator) if denominator else None,
        )
    return out


def _same(mart: dict, expected: dict) -> None:
    assert mart.keys() == expected.keys()
    for month, (numerator, denominator, value) in expected.items():
        got = mart[month]
        assert got[:2] == (numerator, denominator), month
        assert (got[2] is None) == (value is None) and (
            value is None or abs(got[2] - value) < Decimal("1e-12")
        ), month


def _learner_keys(world: World) -> dict[str, list[int]]:
    """The exact key (email | given name, lower-cased) of each LMS learner record -> the real people holding it."""
    users = world.table("moodle", "users")
    holders: dict[str, list[int]] = defaultdict(list)
    for row in range(len(users)):
        record = users.record(row)
        holders[record["email"].strip().lower() + "|" + record["firstname"].strip().lower()].append(
            int(users.person[row])
        )
    return holders


def _learner_of(holders: dict[str, list[int]], email: str, given: str) -> int | None:
    """The learner a record with this email and given name is, by the platform's exact-key rule (one holder);
    records the rule cannot place are new people, so never learners (fuzzy matches are the dedupe's)."""
    found = holders.get(email.strip().lower() + "|" + given.strip().lower(), [])
    return found[0] if len(found) == 1 else None


def _payers(world: World) -> dict[int, int | None]:
    """Charge row -> the learner it is a gift of. Stripe knows a payer by billing email, described by the
    earliest charge's billing name (its first word is the given name)."""
    charges = world.table("stripe", "charges")
    holders = _learner_keys(world)
    first: dict[str, dict] = {}
    for index in np.argsort(charges.created, kind="stable").tolist():
        billing = charges.record(index)["billing_details"]
        first.setdefault(billing["email"].strip().lower(), billing)
    payers = {}
    for index in range(len(charges)):
        billing = first[charges.record(index)["billing_details"]["email"].strip().lower()]
        payers[index] = _learner_of(holders, billing["email"], (billing["name"] or "").strip().split(" ")[0])
    return payers


@pytest.fixture(scope="module")
def world() -> World:
    # No duplicates and no malformed records, so each real person is one warehouse person and the truth
    # is countable per person; the test checks that premise before using it.
    return World(seed=21, learners=150, duplicate_rate=0.0, malformed_rate=0.0)


@pytest.fixture
def synced(warehouse_url: str, world: World) -> dict[int, str]:
    with SandboxServer(world) as sandbox:
        sync_sandbox(warehouse_url, sandbox, STREAMS, run_id="kpi")
    users = world.table("moodle", "users")
    with psycopg.connect(warehouse_url) as conn:
        by_user = dict(
            conn.execute(
                "SELECT source_record_id::int, person_id::text FROM core.person_source_id WHERE source = 'moodle.user'"
            ).fetchall()
        )
        charge_people = dict(
            conn.execute("SELECT source_record_id, person_id::text FROM core.donation").fetchall()
        )
        volunteer_people = dict(
            conn.execute("SELECT source_record_id::int, person_id::text FROM core.volunteer").fetchall()
        )
    core_of: dict[int, str] = {}
    for row in range(len(users)):
        core_of.setdefault(int(users.person[row]), by_user[users.id_of(row)])
    # The premise: real learners and warehouse learners are one to one, and gifts and volunteering of a
    # learner landed on that learner.
    assert len(set(core_of.values())) == len(core_of) == world.learners
    # and each learner-paid gift and learner volunteer the exact-key rule places landed on that learner.
    charges = world.table("stripe", "charges")
    for row, learner in _payers(world).items():
        if learner is not None:
            assert charge_people[charges.id_of(row)] == core_of[learner]
    data = volunteers.of(world)
    holders = _learner_keys(world)
    for row in range(len(data.users)):
        record = data.users.record(row)
        learner = _learner_of(holders, record["user_email"], record["user_fname"])
        if learner is not None:
            assert volunteer_people[data.users.id_of(row)] == core_of[learner]
    return core_of


def test_completion_and_reengagement_marts_equal_the_truth(warehouse_url: str, world: World, synced) -> None:
    enrollments = world.table("moodle", "enrollments")
    completions = world.table("moodle", "course_completions")
    course_of = enrollments.columns["course"]
    done: dict[tuple[int, int], list[int]] = defaultdict(list)
    for row in range(len(completions)):
        enrolment = int(completions.columns["enrolment"][row])
        done[(int(completions.person[row]), int(course_of[enrolment]))].append(int(completions.created[row]))
    cohort: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    starts: dict[int, list[int]] = defaultdict(list)
    for row in range(len(enrollments)):
        person, started = int(enrollments.person[row]), int(enrollments.created[row])
        month = _month(started)
        cohort[month][1] += 1
        cohort[month][0] += any(at >= started for at in done[(person, int(course_of[row]))])
        starts[person].append(started)
    months = _months(min(cohort), max(cohort))
    _same(_mart(warehouse_url, "mart.kpi_course_completion_monthly"),
          _expected({m: tuple(c) for m, c in cohort.items()}, months))  # fmt: skip

    engaged: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    for times in starts.values():
        for month in {_month(t) for t in times}:
            before = [t for t in times if t < _epoch(month)]
            engaged[month][1] += 1
            engaged[month][0] += bool(before) and max(before) < _epoch(month) - 90 * DAY
    assert sum(n for n, _ in engaged.values()) > 0
    _same(_mart(warehouse_url, "mart.kpi_learner_reengagement_monthly"),
          _expected({m: tuple(c) for m, c in engaged.items()}, months))  # fmt: skip


def test_learners_also_donors_and_volunteers_marts_equal_the_truth(
    warehouse_url: str, world: World, synced
) -> None:
    enrollments = world.table("moodle", "enrollments")
    learner_since: dict[int, int] = {}
    for row in range(len(enrollments)):
        person = int(enrollments.person[row])
        learner_since[person] = min(learner_since.get(person, 1 << 62), int(enrollments.created[row]))
    charges = world.table("stripe", "charges")
    donor_since: dict[int, int] = {}
    for row, learner in _payers(world).items():
        if learner is not None:
            donor_since[learner] = min(donor_since.get(learner, 1 << 62), int(charges.created[row]))
    data = volunteers.of(world)
    holders = _learner_keys(world)
    volunteer_since: dict[int, int] = {}
    for row in range(len(data.users)):
        record = data.users.record(row)
        learner = _learner_of(holders, record["user_email"], record["user_fname"])
        if learner is not None:
            volunteer_since[learner] = min(
                volunteer_since.get(learner, 1 << 62), int(data.users.created[row])
            )
    today = datetime.now(UTC)
    months = _months(_month(min(learner_since.values())), date(today.year, today.month, 1))
    for mart, since in (
        ("mart.kpi_learners_also_donors_monthly", donor_since),
        ("mart.kpi_learners_also_volunteers_monthly", volunteer_since),
    ):
        counts = {}
        for month in months:
            end = _epoch(_next(month))
            learners = [p for p, t in learner_since.items() if t < end]
            counts[month] = (sum(1 for p in learners if since.get(p, 1 << 62) < end), len(learners))
        assert counts[months[-1]][0] > 0, mart
        _same(_mart(warehouse_url, mart), _expected(counts, months))


def test_data_accuracy_and_duplicate_rate_marts_follow_their_reports(
    warehouse_url: str, tmp_path: Path
) -> None:
    truth = write_exports(World(seed=3, learners=200), tmp_path)
    actor = Actor("test:kpi")
    files = legacy_import.import_exports(warehouse_url, actor, "r1", tmp_path)
    legacy_profile.profile(warehouse_url, actor, "r1", files)
    legacy_cleanup.cleanup(warehouse_url, actor, "r1", files)
    kinds = [kind for defects in truth.defects.values() for kind in defects.values()]
    records = truth.total_rows - kinds.count("exact_duplicate")
    clean = records - sum(1 for kind in kinds if kind in UNFIXABLE)
    today = datetime.now(UTC)
    _same(
        _mart(warehouse_url, "mart.kpi_data_accuracy_monthly"),
        {date(today.year, today.month, 1): (clean, records, Decimal(clean) / Decimal(records))},
    )

    with psycopg.connect(warehouse_url) as conn:
        for run_id, status, finished, compared, in_pairs in (
            ("a", "succeeded", "2026-01-05", 100, 5),
            ("b", "succeeded", "2026-01-20", 50, 3),
            ("c", "failed", "2026-01-21", 500, 400),  # a failed run reports nothing
            ("d", "succeeded", "2026-03-02", 10, 0),
        ):
            conn.execute(
                "INSERT INTO ops.dedupe_run (run_id, mode, status, started_at, finished_at, people_compared, details)"
                " VALUES (%s, 'full', %s, %s::timestamptz, %s::timestamptz, %s,"
                " jsonb_build_object('people_in_pairs', %s))",
                (run_id, status, finished, finished, compared, in_pairs),
            )
    _same(
        _mart(warehouse_url, "mart.kpi_duplicate_rate_monthly"),
        {
            date(2026, 1, 1): (8, 150, Decimal(8) / 150),
            date(2026, 2, 1): (0, 0, None),
            date(2026, 3, 1): (0, 10, Decimal(0)),
        },
    )
    assert all(found == [] for found in mart_problems(warehouse_url).values())


def test_every_kpi_mart_has_the_convention_columns_a_label_and_the_reporting_grant(
    warehouse_url: str,
) -> None:
    with psycopg.connect(warehouse_url) as conn:
        for mart in KPI_MARTS:
            schema, name = mart.split(".")
            columns = conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s"
                " AND table_name = %s ORDER BY ordinal_position",
                (schema, name),
            ).fetchall()
            assert columns == [("month", "date"), ("numerator", "numeric"), ("denominator", "numeric"),
                               ("value", "numeric")], mart  # fmt: skip
            comment = conn.execute("SELECT obj_description(%s::regclass)", (mart,)).fetchone()[0]
            assert comment and "(share, 0-1" in comment, mart
            for role in ("cdp_viewer", "cdp_editor", "cdp_admin", "cdp_finance"):
                assert conn.execute("SELECT has_table_privilege(%s, %s, 'SELECT')", (role, mart)).fetchone()[
                    0
                ]
            assert not conn.execute(
                "SELECT has_table_privilege('cdp_outreach', %s, 'SELECT')", (mart,)
            ).fetchone()[0]


def test_the_mart_check_catches_a_broken_mart(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        conn.execute(
            "INSERT INTO ops.dedupe_run (run_id, mode, status, finished_at, people_compared, details)"
            " VALUES ('x', 'full', 'succeeded', '2026-01-05', 10, '{\"people_in_pairs\": 30}')"
        )
    problems = mart_problems(warehouse_url)

    assert problems["mart.kpi_duplicate_rate_monthly"] == ["2026-01-01: numerator 30 outside 0..10"]
