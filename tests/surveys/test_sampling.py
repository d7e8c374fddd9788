"""The weekly survey sample (issue 18): 10% per course of the eligible completers, only people the outreach list
holds for surveys, nobody in the quiet period, the same people on a re-run, and a backfill that invites nobody
twice; against a real warehouse and an independent re-computation of the draw (survey_world)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

import psycopg
import pytest
from survey_world import ELIGIBLE_KINDS, also_complete, build_week, expected_sample, seed_of

from cdp.surveys.sampling import (
    SamplingError,
    draw_week,
    draw_weeks,
    parse_week,
    previous_week,
    weeks_between,
)
from cdp.warehouse import Actor

ACTOR = Actor("test:surveys")
WEEK = date(2026, 11, 23)  # a Monday
SIZES = {"Python basics": 1200, "Budgeting": 600, "Digital skills": 300, "Job search": 120, "Typing": 30,
         "Welding safety": 8, "Beekeeping": 2}  # fmt: skip


def _invited(
    url: str, week: date | None = None, survey_key: str | None = None
) -> list[tuple[str, str, date]]:
    with psycopg.connect(url) as conn:
        return [
            (str(r[0]), r[1], r[2])
            for r in conn.execute(
                "SELECT person_id, survey_key, sample_week FROM ops.survey_invitation"
                " WHERE (%(week)s::date IS NULL OR sample_week = %(week)s)"
                "   AND (%(key)s::text IS NULL OR survey_key = %(key)s)",
                {"week": week, "key": survey_key},
            )
        ]


@pytest.fixture
def week_of_completers(warehouse_url: str):
    with psycopg.connect(warehouse_url) as conn:
        return build_week(conn, WEEK, SIZES, seed=18)


def test_a_weeks_sample_is_a_tenth_overall_and_per_course(warehouse_url: str, week_of_completers) -> None:
    built = week_of_completers
    sample = draw_week(warehouse_url, WEEK, actor=ACTOR, run_id="r1")

    frame = {pid: c.course_id for pid, c in built.completers.items() if pid in built.eligible}
    assert sample.created and sample.completers == len(built.completers) and sample.frame == len(frame)
    assert sample.draw_seed == seed_of("completer-satisfaction", WEEK)
    drawn = {row["person_id"]: row["course_id"] for row in sample.invitations}
    assert len(drawn) == sample.sampled
    assert abs(sample.sampled / sample.frame - 0.10) <= 0.01
    by_course: dict[str, set[str]] = {}
    for person_id, course_id in drawn.items():
        by_course.setdefault(course_id, set()).add(person_id)
    for name, size in SIZES.items():
        course_id = built.courses[name]
        eligible_here = sum(1 for course in frame.values() if course == course_id)
        taken = len(by_course.get(course_id, ()))
        # Largest remainder: each course gets its exact quota of the total rounded down or up.
        quota = eligible_here * sample.sampled / sample.frame
        assert int(quota) <= taken <= int(quota) + 1, (name, taken, quota)
        if size >= 200:
            assert abs(taken / eligible_here - 0.10) <= 0.02, name
    # The small courses are not skipped: each got its quota rounded down or up, and the 10% courses of 120
    # and 30 completers have seats.
    assert by_course.get(built.courses["Job search"]) and by_course.get(built.courses["Typing"])
    # Exactly who an independent re-computation of the same rules draws.
    assert by_course == {c: people for c, people in expected_sample(frame, sample.survey_key, WEEK, 0.10).items()
                         if people}  # fmt: skip


def test_nobody_outside_the_outreach_list_for_surveys_is_drawn(
    warehouse_url: str, week_of_completers
) -> None:
    built = week_of_completers
    # The whole frame at once: a fraction of 1 draws every person the function may draw.
    sample = draw_week(warehouse_url, WEEK, actor=ACTOR, fraction=1.0, survey_key="everyone")
    drawn = {row["person_id"] for row in sample.invitations}
    assert drawn == built.eligible
    kinds = {c.kind for pid, c in built.completers.items() if pid not in drawn}
    assert kinds == {"minor_without_parental_consent", "unknown_age", "withdrew_survey_consent",
                     "consented_to_course_messages_only", "refused_surveys"}  # fmt: skip
    with psycopg.connect(warehouse_url) as conn:
        listed = {str(r[0]) for r in conn.execute(
            "SELECT person_id FROM mart.outreach_eligible WHERE purpose = 'surveys'")}  # fmt: skip
        # The view itself leaves out minors without verified parental consent and people of unknown age.
        reasons = dict(conn.execute(
            "SELECT refusal_reason, count(*) FROM mart.outreach_decision WHERE purpose = 'surveys'"
            " AND person_id = ANY(%s::uuid[]) GROUP BY 1",
            ([pid for pid, c in built.completers.items() if c.kind not in ELIGIBLE_KINDS],),
        ).fetchall())  # fmt: skip
    assert drawn <= listed
    assert {"minor_without_verified_parental_consent", "age_unknown", "latest_statement_withdrawn",
            "no_statement", "latest_statement_refused"} == set(reasons)  # fmt: skip
    # A person who withdraws today is not drawn next week, though they completed again.
    person = next(iter(drawn))
    with psycopg.connect(warehouse_url) as conn:
        conn.execute(
            "INSERT INTO core.consent (person_id, purpose, status, lawful_basis, source, source_record_id, stated_at)"
            " VALUES (%s, 'surveys', 'withdrawn', 'consent', 'moodle', %s, now())", (person, str(uuid.uuid4())),
        )  # fmt: skip
        build_week(
            conn,
            WEEK + timedelta(days=7),
            {"Python basics": 1},
            seed=1,
            courses={"Python basics": built.courses["Python basics"]},
            people=[(person, "adult_consented")],
        )
    later = draw_week(warehouse_url, WEEK + timedelta(days=7), actor=ACTOR, fraction=1.0, quiet_days=0,
                      survey_key="everyone")  # fmt: skip
    assert later.completers == 1 and later.frame == 0 and later.invitations == []


def test_a_person_completing_two_courses_is_drawn_once_in_the_first(
    warehouse_url: str, week_of_completers
) -> None:
    built = week_of_completers
    twice = sorted(built.eligible)[:40]
    with psycopg.connect(warehouse_url) as conn:
        also_complete(conn, built, twice[:20], built.courses["Beekeeping"], before_first=True)
        also_complete(conn, built, twice[20:], built.courses["Beekeeping"], before_first=False)
    sample = draw_week(warehouse_url, WEEK, actor=ACTOR, fraction=1.0)
    drawn = {row["person_id"]: row["course_id"] for row in sample.invitations}
    assert sample.completers == len(built.completers) and len(drawn) == len(built.eligible)
    assert all(drawn[pid] == built.courses["Beekeeping"] for pid in twice[:20])
    assert all(
        drawn[pid] == built.completers[pid].course_id != built.courses["Beekeeping"] for pid in twice[20:]
    )


def test_nobody_invited_within_the_quiet_period_by_any_survey_or_tool(
    warehouse_url: str, week_of_completers
) -> None:
    built = week_of_completers
    eligible = sorted(built.eligible)
    recent, long_ago = eligible[:300], eligible[300:600]
    # Invited by another survey through another tool: 5 weeks before (recent) and 20 weeks before (long ago).
    for people, weeks in ((recent, 5), (long_ago, 20)):
        earlier = WEEK - timedelta(weeks=weeks)
        with psycopg.connect(warehouse_url) as conn:
            build_week(conn, earlier, {"Python basics": len(people)}, seed=weeks,
                       courses={"Python basics": built.courses["Python basics"]},
                       people=[(pid, built.completers[pid].kind) for pid in people])  # fmt: skip
        first = draw_week(warehouse_url, earlier, actor=ACTOR, survey_key=f"pulse-{weeks}", tool="zigpoll",
                          fraction=1.0, quiet_days=0)  # fmt: skip
        assert first.sampled == len(people)
    # Those backdated draws were made just now: the contact-time rule alone would exclude both groups.
    with psycopg.connect(warehouse_url) as conn:
        conn.execute(
            "UPDATE ops.survey_invitation SET created_at = sample_week::timestamptz + interval '1 day'"
        )
    sample = draw_week(warehouse_url, WEEK, actor=ACTOR, fraction=1.0, quiet_days=90)
    drawn = {row["person_id"] for row in sample.invitations}
    assert not drawn & set(recent)
    assert set(long_ago) <= drawn
    assert drawn == built.eligible - set(recent)
    assert sample.frame == len(built.eligible) - len(recent)


def test_a_rerun_draws_the_same_people_and_inserts_nothing(warehouse_url: str, week_of_completers) -> None:
    first = draw_week(warehouse_url, WEEK, actor=ACTOR, run_id="first")
    # New completions and a changed fraction later: the week stays as it was drawn.
    with psycopg.connect(warehouse_url) as conn:
        build_week(conn, WEEK, {"Late course": 50}, seed=99)
    again = draw_week(warehouse_url, WEEK, actor=ACTOR, run_id="second", fraction=0.5)
    assert not again.created
    assert (
        again.invitations == first.invitations
        and again.sampled == first.sampled
        and len(first.invitations) > 0
    )
    assert len(_invited(warehouse_url, WEEK)) == first.sampled
    with psycopg.connect(warehouse_url) as conn:
        events = conn.execute(
            "SELECT details FROM audit.audit_events WHERE action = 'survey_sample_drawn'").fetchall()  # fmt: skip
        refused = None
        try:  # the ledger has no second row for a person, survey and week
            conn.execute(
                "INSERT INTO ops.survey_invitation (person_id, survey_key, sample_week, tool, kind, draw_seed)"
                " VALUES (%s, %s, %s, 'typeform', 'completer_sample', 'x')",
                (first.invitations[0]["person_id"], first.survey_key, WEEK),
            )
        except psycopg.errors.UniqueViolation as error:
            refused = error
    assert refused is not None
    assert len(events) == 1
    assert events[0][0]["sampled"] == first.sampled and events[0][0]["run_id"] == "first"


def test_the_same_week_gives_the_same_people_in_another_warehouse(
    warehouse_url: str, another_warehouse
) -> None:
    other = another_warehouse()
    samples = []
    for url in (warehouse_url, other):
        with psycopg.connect(url) as conn:
            build_week(conn, WEEK, {"A": 400, "B": 90}, seed=5)
        samples.append(draw_week(url, WEEK, actor=ACTOR))
    assert samples[0].sampled > 0 and samples[0].draw_seed == samples[1].draw_seed
    drawn = [sorted((row["person_id"], row["course_id"]) for row in s.invitations) for s in samples]
    assert drawn[0] != [] and drawn[0] == drawn[1]


def test_a_backfill_of_past_weeks_invites_nobody_twice(warehouse_url: str) -> None:
    weeks = [WEEK + timedelta(weeks=n) for n in range(-4, 2)]
    pool: list[tuple[str, str]] = []
    with psycopg.connect(warehouse_url) as conn:
        first = build_week(conn, weeks[0], {"A": 400, "B": 200}, seed=1)
        pool = [(pid, c.kind) for pid, c in first.completers.items()]
        courses = first.courses
        # The same 600 people complete again every week (repeat learners): the quiet period matters.
        for n, week in enumerate(weeks[1:], 1):
            build_week(conn, week, {"A": 400, "B": 200}, seed=n + 1, courses=courses, people=list(pool))
    # Scheduled runs drew the last two weeks first; a backfill then draws the four before, oldest first,
    # and a second backfill over everything draws nothing new.
    draw_weeks(warehouse_url, weeks[-2:], actor=ACTOR, fraction=0.3)
    backfilled = draw_weeks(warehouse_url, weeks[:-2], actor=ACTOR, fraction=0.3)
    assert [s.sample_week for s in backfilled] == weeks[:-2]
    before = _invited(warehouse_url)
    again = draw_weeks(warehouse_url, weeks, actor=ACTOR, fraction=0.3)
    assert not any(s.created for s in again) and _invited(warehouse_url) == before
    people = [pid for pid, _key, _week in before]
    assert len(people) == len(set(people)) > 0  # within 90 days, every person at most once
    # Each backfilled week left out everyone invited before it was drawn (all of them within the last 90 days),
    # those of the later weeks included: its frame is the eligible repeat learners not yet invited.
    eligible = len(first.eligible)
    invited_before = sum(1 for _pid, _key, week in before if week in weeks[-2:])
    for sample in backfilled:
        assert sample.frame == eligible - invited_before
        invited_before += sample.sampled


def test_weeks_and_parameters_that_cannot_be_drawn_are_refused(warehouse_url: str) -> None:
    with pytest.raises(SamplingError, match="not a Monday"):
        draw_week(warehouse_url, date(2026, 11, 24), actor=ACTOR)
    with pytest.raises(SamplingError, match="fraction"):
        draw_week(warehouse_url, WEEK, actor=ACTOR, fraction=0)
    with pytest.raises(SamplingError, match="tool"):
        draw_week(warehouse_url, WEEK, actor=ACTOR, tool="mailchimp")
    with psycopg.connect(warehouse_url) as conn, pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute("SELECT ops.draw_survey_sample('x', 'typeform', '2026-11-24', 0.1, 90)")
    assert parse_week("2026-W48") == WEEK and previous_week(datetime(2026, 12, 2, 6)) == WEEK
    assert weeks_between(WEEK, WEEK + timedelta(weeks=2))[-1] == WEEK + timedelta(weeks=2)


def test_only_the_draw_function_writes_the_ledger(warehouse_url: str, week_of_completers, logins) -> None:
    pipeline, outreach = logins("cdp_loader"), logins("cdp_outreach")
    sample = draw_week(pipeline, WEEK, actor=ACTOR)
    assert sample.sampled > 0
    with psycopg.connect(pipeline) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(
            "INSERT INTO ops.survey_invitation (person_id, survey_key, sample_week, tool, kind, draw_seed)"
            " VALUES (%s, %s, %s, 'typeform', 'completer_sample', 'x')",
            (next(iter(week_of_completers.completers)), sample.survey_key, WEEK),
        )
    with psycopg.connect(outreach) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT ops.draw_survey_sample('x', 'typeform', %s, 0.1, 90)", (WEEK,))
