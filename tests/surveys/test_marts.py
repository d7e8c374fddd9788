"""The survey marts (issue 18, parts 4 and 5) against an independent computation: answers link back to their
invitation by the exact key they carry (Typeform hidden field, SurveyMonkey custom variable, Zigpoll metadata),
and the response rate per week and tool, NPS and satisfaction per week and course, and who answered against who
was asked per course and cohort follow from what was planted here."""

from __future__ import annotations

import json
import random
import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import psycopg
import pytest
from survey_world import build_week

from cdp.surveys.alerts import empty_sample_findings, response_rate_findings
from cdp.surveys.sampling import draw_week
from cdp.warehouse import Actor

ACTOR = Actor("test:surveys")
WEEK = date(2026, 11, 2)
SM_QUESTION = "How likely are you to recommend us to a friend?"
KEY_PATH = {"typeform": ("hidden",), "surveymonkey": ("custom_variables",), "zigpoll": ("metadata",)}


def _round(value: Fraction, places: int) -> Decimal:
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
        Decimal(1).scaleb(-places), ROUND_HALF_UP
    )


def _respond(
    conn: psycopg.Connection,
    tool: str,
    *,
    key: str | None,
    answers: dict,
    at: datetime,
    deleted: bool = False,
    raw_versions: int = 1,
) -> None:
    """One answer as the tool's sync lands it: core.survey_response, and its payload(s) in raw.records."""
    record = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO core.survey_response (survey_id, submitted_at, answers, source, source_record_id, deleted_at)"
        " VALUES ('form-1', %s, %s, %s, %s, %s)",
        (at, json.dumps(answers), tool, record, at if deleted else None),
    )
    carrier = KEY_PATH[tool][0]
    for version in range(raw_versions):
        # An earlier version of the payload without the key: the latest one received is read.
        payload = {
            "id": record,
            carrier: ({"invitation_id": key} if key and version == raw_versions - 1 else {}),
        }
        conn.execute(
            "INSERT INTO raw.records (source, stream, source_record_id, run_id, payload)"
            " VALUES (%s, 'responses', %s, 'r', %s)",
            (tool, record, json.dumps(payload)),
        )


@pytest.fixture
def answered(warehouse_url: str):
    """Three weeks, one per tool, each half sampled; about 60% answer; plus answers that must not link."""
    rng = random.Random(7)
    with psycopg.connect(warehouse_url) as conn:
        conn.execute("INSERT INTO ops.survey_measure (source, question, measure) VALUES ('surveymonkey', %s, 'nps')",
                     (SM_QUESTION,))  # fmt: skip
        weeks = [
            build_week(conn, WEEK + timedelta(weeks=n), {"A": 160, "B": 60, "C": 9}, seed=n) for n in range(3)
        ]
    tools = ["typeform", "zigpoll", "surveymonkey"]
    for built, tool in zip(weeks, tools, strict=True):
        draw_week(warehouse_url, built.week, actor=ACTOR, survey_key=f"s-{tool}", tool=tool, fraction=0.5)
    truth: dict[str, dict] = {}
    with psycopg.connect(warehouse_url) as conn:
        invitations = conn.execute(
            "SELECT invitation_id::text, person_id::text, survey_key, sample_week, tool, course_id::text"
            " FROM ops.survey_invitation"
        ).fetchall()
        cohorts = {
            pid: c.enrolled_at.strftime("%Y-%m") for built in weeks for pid, c in built.completers.items()
        }
        for invitation_id, person_id, survey_key, week, tool, course_id in invitations:
            row = {
                "person_id": person_id,
                "survey_key": survey_key,
                "week": week,
                "tool": tool,
                "course": course_id,
                "cohort": cohorts[person_id],
                "responded": False,
                "nps": None,
                "satisfaction": None,
            }
            truth[invitation_id] = row
            if rng.random() >= 0.6:
                continue
            at = datetime.combine(week + timedelta(days=8), datetime.min.time()).astimezone()
            nps, satisfaction = rng.randint(0, 10), rng.randint(1, 5)
            row["responded"] = True
            if tool == "typeform":
                if rng.random() < 0.2:  # answered twice: the later answer's scores count
                    _respond(conn, tool, key=invitation_id, answers={"nps": rng.randint(0, 10)}, at=at)
                    at += timedelta(hours=1)
                _respond(
                    conn,
                    tool,
                    key=invitation_id,
                    answers={"nps": nps, "satisfaction": satisfaction},
                    at=at,
                    raw_versions=rng.choice([1, 2]),
                )
                row.update(nps=nps, satisfaction=satisfaction)
            elif tool == "zigpoll":  # one answer per slide
                _respond(
                    conn,
                    tool,
                    key=invitation_id,
                    at=at,
                    answers={"slideId": "nps", "slideTitle": "Recommend?", "response": str(nps)},
                )
                if rng.random() < 0.5:
                    _respond(
                        conn,
                        tool,
                        key=invitation_id,
                        at=at + timedelta(minutes=1),
                        answers={
                            "slideId": "s2",
                            "slideTitle": "satisfaction",
                            "response": f"{satisfaction}",
                        },
                    )
                    row["satisfaction"] = satisfaction
                row["nps"] = nps
            else:
                label = f"{nps} - Extremely likely" if nps == 10 else str(nps)
                _respond(
                    conn, tool, key=invitation_id, answers={SM_QUESTION: [label], "Comments": ["fine"]}, at=at
                )
                row["nps"] = nps
        # Answers that link to nothing: no key, a key nobody was given, another tool's invitation, and one
        # deleted at the source; and a satisfaction outside its scale.
        some = next(i for i, r in truth.items() if r["tool"] == "typeform" and not r["responded"])
        now = datetime.now().astimezone()
        _respond(conn, "typeform", key=None, answers={"nps": 10}, at=now)
        _respond(conn, "typeform", key=str(uuid.uuid4()), answers={"nps": 10}, at=now)
        _respond(conn, "zigpoll", key=some, answers={"slideId": "nps", "response": "10"}, at=now)
        _respond(conn, "typeform", key=some, answers={"nps": 10}, at=now, deleted=True)
        _respond(conn, "typeform", key=some.upper(), answers={"nps": 10}, at=now)
    return truth


def test_answers_link_to_their_invitation_by_exact_key_only(warehouse_url: str, answered) -> None:
    with psycopg.connect(warehouse_url) as conn:
        links = conn.execute(
            "SELECT invitation_key, invitation_id::text FROM ops.survey_response_invitation").fetchall()  # fmt: skip
        outcome = dict(conn.execute(
            "SELECT invitation_id::text, responded FROM mart.survey_invitation_outcome").fetchall())  # fmt: skip
    linked = {invitation for _key, invitation in links if invitation}
    assert linked == {i for i, row in answered.items() if row["responded"]}
    assert outcome == {i: row["responded"] for i, row in answered.items()}
    unlinked = [key for key, invitation in links if invitation is None]
    assert len(unlinked) == 4 and None in unlinked  # no key, unknown key, another tool's, upper-cased


def test_response_rate_per_week_and_tool_equals_the_planted_answers(warehouse_url: str, answered) -> None:
    expected: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for row in answered.values():
        expected[(row["week"], row["tool"])][0] += 1
        expected[(row["week"], row["tool"])][1] += row["responded"]
    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute(
            "SELECT sample_week, tool, invited, responded, response_rate FROM mart.survey_response_rate_weekly"
        ).fetchall()
    assert {(w, t): (i, r, rate) for w, t, i, r, rate in rows} == {
        key: (invited, responded, _round(Fraction(responded, invited), 4))
        for key, (invited, responded) in expected.items()
    }
    assert len(rows) == 3 and all(0 < r[4] < 1 for r in rows)


def _scores(rows: list[dict]) -> tuple:
    nps = [r["nps"] for r in rows if r["nps"] is not None]
    sat = [r["satisfaction"] for r in rows if r["satisfaction"] is not None]
    promoters, detractors = sum(n >= 9 for n in nps), sum(n <= 6 for n in nps)
    return (
        sum(r["responded"] for r in rows), len(nps), promoters, detractors,
        _round(Fraction(100 * (promoters - detractors), len(nps)), 1) if nps else None,
        len(sat), _round(Fraction(sum(sat), len(sat)), 2) if sat else None,
        _round(Fraction(sum(s >= 4 for s in sat), len(sat)), 4) if sat else None,
    )  # fmt: skip


def test_nps_and_satisfaction_per_week_and_course_equal_an_independent_computation(
    warehouse_url: str, answered
) -> None:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in answered.values():
        groups[(row["week"], None)].append(row)
        groups[(row["week"], row["course"])].append(row)
    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute(
            "SELECT sample_week, course_id::text, all_courses, responses, nps_answers, promoters, detractors, nps,"
            " satisfaction_answers, satisfaction_mean, satisfied_share FROM mart.survey_scores_weekly"
        ).fetchall()
    got = {(r[0], r[1]): tuple(r[3:]) for r in rows}
    assert all(r[2] == (r[1] is None) for r in rows)
    assert got == {key: _scores(members) for key, members in groups.items()}
    # Every tool's scores made it: Typeform numbers, Zigpoll slides, SurveyMonkey's choice text per heading.
    assert all(got[(week, None)][1] > 0 for week in {row["week"] for row in answered.values()})


def test_who_answered_against_who_was_asked_by_course_and_cohort(warehouse_url: str, answered) -> None:
    expected: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for row in answered.values():
        key = (row["survey_key"], row["week"], row["tool"], row["course"], row["cohort"])
        expected[key][0] += 1
        expected[key][1] += row["responded"]
    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute(
            "SELECT survey_key, sample_week, tool, course_id::text, cohort, invited, responded, not_responded,"
            " response_rate FROM mart.survey_nonresponse"
        ).fetchall()
    assert {tuple(r[:5]): tuple(r[5:]) for r in rows} == {
        key: (i, r, i - r, _round(Fraction(r, i), 4)) for key, (i, r) in expected.items()
    }
    assert len({r[4] for r in rows}) > 3  # several cohorts


def test_alerts_on_an_empty_sample_and_a_low_response_rate(warehouse_url: str, answered) -> None:
    samples = [
        {"survey_key": "s", "sample_week": "2026-11-30", "completers": 12, "frame": 0, "sampled": 0},
        {"survey_key": "s", "sample_week": "2026-12-07", "completers": 0, "frame": 0, "sampled": 0},
        {"survey_key": "s", "sample_week": "2026-12-14", "completers": 40, "frame": 30, "sampled": 3},
    ]
    assert [f.key for f in empty_sample_findings(samples)] == ["survey_sample_empty:s/2026-11-30"]
    week = WEEK
    rate = sum(r["responded"] for r in answered.values() if r["week"] == week) / sum(
        1 for r in answered.values() if r["week"] == week)  # fmt: skip
    below = response_rate_findings(warehouse_url, week, actor=ACTOR, min_rate=rate + 0.01, min_invited=1)
    assert [f.key for f in below] == [f"survey_response_rate:{week}/typeform"]
    assert response_rate_findings(warehouse_url, week, actor=ACTOR, min_rate=rate - 0.01, min_invited=1) == []
    assert response_rate_findings(warehouse_url, week, actor=ACTOR, min_rate=1, min_invited=10_000) == []


def test_the_data_health_page_shows_the_response_rate_and_nps_per_week(
    warehouse_url: str, answered, tmp_path
) -> None:
    import re
    from pathlib import Path

    from cdp import data_health

    page = Path(data_health.build(warehouse_url, ACTOR, tmp_path)["html"]).read_text()
    shown = dict(re.findall(r'data-metric="(survey_[a-z_]+:[0-9-]+)" data-value="([^"]*)"', page))
    weeks = sorted({row["week"] for row in answered.values()})
    for week in weeks:
        rows = [r for r in answered.values() if r["week"] == week]
        invited, responded = len(rows), sum(r["responded"] for r in rows)
        assert shown[f"survey_invited:{week}"] == str(invited)
        assert shown[f"survey_responded:{week}"] == str(responded)
        assert Decimal(shown[f"survey_response_rate:{week}"]) == _round(Fraction(responded, invited), 4)
        assert Decimal(shown[f"survey_nps:{week}"]) == _scores(rows)[4]
    section = page[page.index('<section id="surveys">') :]
    section = section[: section.index("</section>")]
    assert 'aria-label="response rate per sample week"' in section
    assert 'aria-label="net promoter score per sample week"' in section and section.count("<rect") == 2 * len(
        weeks
    )
    assert "no data yet" not in section
