"""Impact per fund and month (mart.fund_impact_monthly) against an independent computation from planted truth:
programs funded fully, split 60/40, not at all (unmapped) and changed mid-period, enrollments (some by learners
back after a long pause: re-engaged), completions and survey answers (NPS, satisfaction, skills improvement on a
1-5 scale, yes/no or junk), gifts allocated to the funds; money to the cent, the drill-down rows
(mart.fund_impact_rows) add up to every figure, and the report's before/after equals the same computation."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import psycopg
import pytest

from cdp.finance import impact_report, programs

START, CHANGE = date(2026, 1, 1), date(2026, 2, 15)
GAUS = {"GAU-FULL": "Full Fund", "GAU-A": "Grant A", "GAU-B": "Grant B", "GAU-NEW": "New Grant"}
COURSES = {"c1": "Fully funded", "c2": "Split program", "c3": None, "c4": "Changed program"}


def funds_of(course: str, day: date) -> list[tuple[str | None, Decimal | None]]:
    """The planted truth: which funds pay for a course's activity on a day, with shares."""
    program = COURSES.get(course) if course else None
    if program is None or day < START:
        return [(None, None)]
    if program == "Fully funded":
        return [("Full Fund", Decimal(1))]
    if program == "Split program":
        return [("Grant A", Decimal("0.6")), ("Grant B", Decimal("0.4"))]
    return [("Full Fund", Decimal(1))] if day < CHANGE else [("New Grant", Decimal(1))]


def month(at: datetime) -> date:
    return at.astimezone(UTC).date().replace(day=1)


def q(value: Decimal, places: str) -> Decimal:
    return value.quantize(Decimal(places), rounding=ROUND_HALF_UP)


@pytest.fixture
def planted(warehouse_url: str, logins) -> dict:
    rng = random.Random(19)
    url = warehouse_url
    truth: dict = {"enrollment": [], "completion": [], "survey_response": [], "allocation": []}
    with psycopg.connect(url, autocommit=True) as conn:
        # The skills question is configuration (revision 0032): admin maps Typeform's field ref 'skills'.
        conn.execute(
            "INSERT INTO ops.survey_measure (source, question, measure) VALUES ('typeform', 'skills', 'skills')"
        )
        fund_id = {}
        for gau, name in GAUS.items():
            fund_id[name] = conn.execute(
                "INSERT INTO core.fund (source, source_record_id, name) VALUES ('salesforce', %s, %s)"
                " RETURNING fund_id", (gau, name)).fetchone()[0]  # fmt: skip
        course_id = {}
        for course in COURSES:
            course_id[course] = conn.execute(
                "INSERT INTO core.course (source, source_record_id, title) VALUES ('test', %s, %s)"
                " RETURNING course_id", (course, course.upper())).fetchone()[0]  # fmt: skip
        people = [conn.execute("INSERT INTO core.person (is_learner) VALUES (true) RETURNING person_id").fetchone()[0]
                  for _ in range(40)]  # fmt: skip
        base = datetime(2025, 12, 20, tzinfo=UTC)
        n = 0
        for person in people:
            # An earlier enrollment for some: long ago (re-engaged when back after 90 days) or just before.
            if rng.random() < 0.5:
                n += 1
                course = rng.choice(sorted(COURSES))
                enrolled = datetime(2025, rng.choice([6, 7, 8, 10, 11]), rng.randint(1, 28), 12, tzinfo=UTC)
                eid = conn.execute(
                    "INSERT INTO core.enrollment (person_id, course_id, enrolled_at, source, source_record_id)"
                    " VALUES (%s, %s, %s, 'test', %s) RETURNING enrollment_id",
                    (person, course_id[course], enrolled, f"e{n}")).fetchone()[0]  # fmt: skip
                truth["enrollment"].append((eid, person, course, enrolled))
            for course in rng.sample(sorted(COURSES), rng.randint(1, 3)):
                n += 1
                enrolled = base + timedelta(days=rng.randint(0, 95), minutes=rng.randint(0, 1439))
                eid = conn.execute(
                    "INSERT INTO core.enrollment (person_id, course_id, enrolled_at, source, source_record_id)"
                    " VALUES (%s, %s, %s, 'test', %s) RETURNING enrollment_id",
                    (person, course_id[course], enrolled, f"e{n}")).fetchone()[0]  # fmt: skip
                truth["enrollment"].append((eid, person, course, enrolled))
                if rng.random() < 0.6:
                    completed = enrolled + timedelta(days=rng.randint(3, 40), minutes=rng.randint(0, 600))
                    cid = conn.execute(
                        "INSERT INTO core.course_completion (person_id, course_id, enrollment_id, completed_at,"
                        " source, source_record_id) VALUES (%s, %s, %s, %s, 'test', %s) RETURNING completion_id",
                        (person, course_id[course], eid, completed, f"k{n}")).fetchone()[0]  # fmt: skip
                    truth["completion"].append((cid, person, course, completed))
                    if rng.random() < 0.7:
                        answered = completed + timedelta(days=rng.randint(0, 5))
                        answers = {"nps": rng.randint(0, 10), "satisfaction": rng.randint(1, 5)}
                        if rng.random() < 0.2:
                            del answers["satisfaction"]
                        skills = rng.choice([1, 2, 3, 4, 5, 5, 4, True, False, "not sure", None])
                        if skills is not None:
                            answers["skills"] = skills
                        sid = conn.execute(
                            "INSERT INTO core.survey_response (person_id, survey_id, submitted_at, answers, source,"
                            " source_record_id) VALUES (%s, 'outcome', %s, %s, 'typeform', %s)"
                            " RETURNING survey_response_id",
                            (person, answered, json.dumps(answers), f"s{n}")).fetchone()[0]  # fmt: skip
                        truth["survey_response"].append((sid, person, answered, answers))
        # A respondent who never enrolled: unmapped, no course.
        stranger = conn.execute("INSERT INTO core.person DEFAULT VALUES RETURNING person_id").fetchone()[0]
        sid = conn.execute(
            "INSERT INTO core.survey_response (person_id, survey_id, submitted_at, answers, source, source_record_id)"
            " VALUES (%s, 'outcome', '2026-02-02T10:00Z', '{\"nps\": 10}', 'typeform', 'stranger')"
            " RETURNING survey_response_id", (stranger,)).fetchone()[0]  # fmt: skip
        truth["survey_response"].append((sid, stranger, datetime(2026, 2, 2, 10, tzinfo=UTC), {"nps": 10}))
        # Gifts: amount allocations (one gift split across two funds), a 50/50 percent split, two currencies.
        gifts = [
            ("2026-01-10T12:00Z", 10_001, "USD", [("Full Fund", 6_001, None), ("Grant A", 4_000, None)]),
            ("2026-01-31T23:59Z", 5_000, "USD", [("Grant B", None, 50), ("Grant A", None, 50)]),
            ("2026-02-01T00:01Z", 7_777, "USD", [("New Grant", 7_777, None)]),
            ("2026-02-20T09:00Z", 3_333, "EUR", [("Full Fund", 3_333, None)]),
            ("2026-03-05T09:00Z", 12_345, "USD", [("Grant A", 12_345, None)]),
            ("2026-03-06T09:00Z", 999, "USD", [("Full Fund", 999, None)]),
        ]
        for g, (received, amount, currency, allocations) in enumerate(gifts):
            did = conn.execute(
                "INSERT INTO core.donation (financial_transaction_id, amount_minor, currency, received_at, source,"
                " source_record_id, crm_source_record_id, crm_amount_minor, crm_currency)"
                " VALUES (%s, %s, %s, %s, 'test', %s, %s, %s, %s) RETURNING donation_id",
                (f"ft{g}", amount, currency, received, f"d{g}", f"OPP{g}", amount, currency)).fetchone()[0]  # fmt: skip
            for a, (fund, cents, percent) in enumerate(allocations):
                aid = conn.execute(
                    "INSERT INTO core.donation_allocation (fund_id, opportunity_id, donation_id, crm_amount_minor,"
                    " percent, currency, source, source_record_id) VALUES (%s, %s, %s, %s, %s, %s, 'salesforce', %s)"
                    " RETURNING allocation_id",
                    (fund_id[fund], f"OPP{g}", did, cents, percent, currency, f"AL{g}-{a}")).fetchone()[0]  # fmt: skip
                truth["allocation"].append(
                    (
                        aid,
                        fund,
                        datetime.fromisoformat(received),
                        currency,
                        cents if cents else amount * percent // 100,
                    )
                )
    staff, fin = logins("cdp_editor"), logins("cdp_finance")
    changes = [
        programs.request_course(staff, "test:c1", "Fully funded", START, "plan", person="amy"),
        programs.request_course(staff, "test:c2", "Split program", START, "plan", person="amy"),
        programs.request_course(staff, "test:c4", "Changed program", START, "plan", person="amy"),
        programs.request_funds(staff, "Fully funded", {"GAU-FULL": Decimal(1)}, START, "plan", person="amy"),
        programs.request_funds(staff, "Split program", {"GAU-A": Decimal("0.6"), "GAU-B": Decimal("0.4")}, START,
                               "grant agreement", person="amy"),
        programs.request_funds(staff, "Changed program", {"GAU-FULL": Decimal(1)}, START, "plan", person="amy"),
        programs.request_funds(staff, "Changed program", {"GAU-NEW": Decimal(1)}, CHANGE, "new grant", person="amy"),
    ]  # fmt: skip
    for change in changes:
        assert programs.approve(fin, change, "checked", person="fin") == "applied"
    return truth


def reengaged(enrollments: list[datetime], at: datetime) -> bool:
    """Enrolled before, but the latest enrollment before the 1st of ``at``'s month started over 90 days before it."""
    first = datetime.combine(month(at), datetime.min.time(), tzinfo=UTC)
    previous = [e_at for e_at in enrollments if e_at < first]
    return bool(previous) and max(previous) < first - timedelta(days=90)


def skills_improved(answer: object) -> bool | None:
    if isinstance(answer, bool):
        return answer
    return answer >= 4 if isinstance(answer, int) and 1 <= answer <= 5 else None


def expected_rows(truth: dict) -> list[tuple]:
    """(fund, month, measure, row id, person, weight, nps, satisfaction, amount, currency, reengaged,
    skills improved) from the truth."""
    latest: dict = defaultdict(list)
    for _, person, course, at in truth["enrollment"]:
        latest[person].append((at, course))
    out = []
    for measure in ("enrollment", "completion"):
        for row_id, person, course, at in truth[measure]:
            back = reengaged([e_at for e_at, _ in latest[person]], at) if measure == "enrollment" else None
            for fund, share in funds_of(course, at.astimezone(UTC).date()):
                out.append((fund or "unmapped", month(at), measure, row_id, person, share or Decimal(1),
                            None, None, None, None, back, None))  # fmt: skip
    for row_id, person, at, answers in truth["survey_response"]:
        before = [(e_at, course) for e_at, course in latest.get(person, []) if e_at <= at]
        course = max(before)[1] if before else None
        for fund, share in funds_of(course, at.astimezone(UTC).date()):
            out.append((fund or "unmapped", month(at), "survey_response", row_id, person, share or Decimal(1),
                        answers.get("nps"), answers.get("satisfaction"), None, None, None,
                        skills_improved(answers.get("skills"))))  # fmt: skip
    for row_id, fund, at, currency, cents in truth["allocation"]:
        out.append(
            (fund, month(at), "allocation", row_id, None, None, None, None, cents, currency, None, None)
        )
    return out


def outcome(acts: list[tuple]) -> tuple:
    """learners enrolled, re-engaged, survey responses, NPS answers, NPS, satisfaction answers and mean, skills
    answers and the share improved, over activity rows of one fund (any months)."""
    enr = [r for r in acts if r[2] == "enrollment"]
    srv = [r for r in acts if r[2] == "survey_response"]
    nps_w = sum((r[5] for r in srv if r[6] is not None), Decimal(0))
    prom = sum((r[5] for r in srv if r[6] is not None and r[6] >= 9), Decimal(0))
    detr = sum((r[5] for r in srv if r[6] is not None and r[6] <= 6), Decimal(0))
    sat_w = sum((r[5] for r in srv if r[7] is not None), Decimal(0))
    sat = sum((r[5] * r[7] for r in srv if r[7] is not None), Decimal(0))
    skills_w = sum((r[5] for r in srv if r[11] is not None), Decimal(0))
    skills = sum((r[5] for r in srv if r[11]), Decimal(0))
    return (
        len({r[4] for r in enr}), len({r[4] for r in enr if r[10]}), len(srv),
        sum(1 for r in srv if r[6] is not None), q(100 * (prom - detr) / nps_w, "0.1") if nps_w else None,
        sum(1 for r in srv if r[7] is not None), q(sat / sat_w, "0.01") if sat_w else None,
        sum(1 for r in srv if r[11] is not None), q(skills / skills_w, "0.0001") if skills_w else None,
    )  # fmt: skip


def previous_month(mon: date) -> date:
    return (mon - timedelta(days=1)).replace(day=1)


def expected_mart(rows: list[tuple]) -> dict[tuple, tuple]:
    groups: dict = defaultdict(list)
    for row in rows:
        groups[(row[0], row[1])].append(row)
    mart = {}
    for (fund, mon), members in groups.items():
        acts = [r for r in members if r[2] != "allocation"]
        now = outcome(acts)
        before_rows = [r for r in groups.get((fund, previous_month(mon)), []) if r[2] != "allocation"]
        before = outcome(before_rows) if before_rows else (0, 0, 0, 0, None, 0, None, 0, None)
        extra = (
            now[1], q(Decimal(now[1]) / now[0], "0.0001") if now[0] else None, now[7], now[8],
            before[2], before[4], before[6], before[8],
        )  # fmt: skip
        enr = [r for r in acts if r[2] == "enrollment"]
        com = [r for r in acts if r[2] == "completion"]
        srv = [r for r in acts if r[2] == "survey_response"]
        ew, cw = sum((r[5] for r in enr), Decimal(0)), sum((r[5] for r in com), Decimal(0))
        nps_w = sum((r[5] for r in srv if r[6] is not None), Decimal(0))
        prom = sum((r[5] for r in srv if r[6] is not None and r[6] >= 9), Decimal(0))
        detr = sum((r[5] for r in srv if r[6] is not None and r[6] <= 6), Decimal(0))
        sat_w = sum((r[5] for r in srv if r[7] is not None), Decimal(0))
        sat = sum((r[5] * r[7] for r in srv if r[7] is not None), Decimal(0))
        figures = (
            len({r[4] for r in enr}), ew, len({r[4] for r in com}), cw,
            q(cw / ew, "0.0001") if ew else None, len(srv), sum(1 for r in srv if r[6] is not None),
            q(100 * (prom - detr) / nps_w, "0.1") if nps_w else None,
            sum(1 for r in srv if r[7] is not None), q(sat / sat_w, "0.01") if sat_w else None,
        )  # fmt: skip
        revenue: dict = defaultdict(int)
        for r in members:
            if r[2] == "allocation":
                revenue[r[9]] += r[8]
        for currency, cents in sorted(revenue.items()) or [(None, None)]:
            cost = int(q(Decimal(cents) / cw, "1")) if cents is not None and cw else None
            mart[(fund, mon, currency)] = (*figures, cents or 0, cost, *extra)
    return mart


def test_the_impact_mart_equals_an_independent_computation_and_its_rows_add_up(planted: dict, warehouse_url: str,
                                                                                logins) -> None:  # fmt: skip
    truth_rows = expected_rows(planted)
    want = expected_mart(truth_rows)
    viewer = logins("cdp_viewer")
    with psycopg.connect(viewer) as conn:  # staff read it: no personal columns in the aggregate
        cur = conn.execute(
            "SELECT fund, month, currency, learners_enrolled, enrollments_weighted, learners_completed,"
            " completions_weighted, completion_rate, survey_responses, nps_answers, nps, satisfaction_answers,"
            " satisfaction_mean, allocated_minor, cost_per_completion_minor, learners_reengaged, reengagement_rate,"
            " skills_answers, skills_improved_share, survey_responses_before, nps_before, satisfaction_mean_before,"
            " skills_improved_share_before, unmapped FROM mart.fund_impact_monthly"
        )
        got_rows = cur.fetchall()
        columns = [c.name for c in conn.execute("SELECT * FROM mart.fund_impact_monthly LIMIT 0").description]
        drill = conn.execute(
            "SELECT fund, month, measure, row_id, person_id, weight, nps_score, satisfaction_score, amount_minor,"
            " currency, reengaged, skills_improved FROM mart.fund_impact_rows").fetchall()  # fmt: skip
        drill_columns = [
            c.name for c in conn.execute("SELECT * FROM mart.fund_impact_rows LIMIT 0").description
        ]
    assert not {"person_id", "email", "given_name", "family_name"} & set(columns)
    assert not {"email", "given_name", "family_name", "phone"} & set(drill_columns)

    def norm(value):
        return (
            Decimal(value).normalize()
            if isinstance(value, Decimal | int) and not isinstance(value, bool)
            else value
        )

    got = {(r[0], r[1], r[2]): tuple(norm(v) for v in r[3:23]) for r in got_rows}
    want_n = {k: tuple(norm(v) for v in figures) for k, figures in want.items()}
    assert set(got) == set(want_n)
    for key in sorted(want_n, key=str):
        assert got[key] == want_n[key], key
    assert {r[23] for r in got_rows if r[0] == "unmapped"} == {True}
    # Every planted case shows: the full fund, the split, unmapped, and the change mid-period (both funds in Feb).
    funds_in_feb = {k[0] for k in got if k[1] == date(2026, 2, 1)}
    assert {"Full Fund", "Grant A", "Grant B", "New Grant", "unmapped"} <= {k[0] for k in got}
    assert {"Full Fund", "New Grant"} <= funds_in_feb
    assert any(k[2] == "EUR" for k in got) and want[("Full Fund", date(2026, 1, 1), "USD")][10] == 6_001
    # Re-engaged learners (not all), skills answered both ways, and survey outcomes of a previous month.
    assert any(0 < f[12] < f[0] for f in got.values())
    assert any(f[15] is not None and 0 < f[15] < 1 for f in got.values())
    assert any(f[17] is not None and f[19] is not None for f in got.values())

    # The drill-down is exactly the planted rows, and its rows add up to every figure.
    def drill_key(r):
        score = tuple(None if v is None else norm(v) for v in r[5:12])
        return (r[0], r[1], r[2], r[3], r[4], *score)

    assert sorted(map(drill_key, drill), key=str) == sorted(map(drill_key, truth_rows), key=str)
    sums: dict = defaultdict(lambda: [set(), Decimal(0), set(), Decimal(0), defaultdict(int)])
    for fund, mon, measure, _, person, weight, _, _, amount, currency, _, _ in drill:
        s = sums[(fund, mon)]
        if measure == "enrollment":
            s[0].add(person)
            s[1] += weight
        elif measure == "completion":
            s[2].add(person)
            s[3] += weight
        elif measure == "allocation":
            s[4][currency] += amount
    for (fund, mon, currency), figures in got.items():
        s = sums[(fund, mon)]
        assert (figures[0], figures[1], figures[2], figures[3]) == (
            len(s[0]),
            norm(s[1]),
            len(s[2]),
            norm(s[3]),
        )
        assert figures[10] == norm(s[4].get(currency, 0))


def test_the_funder_report_is_reproducible_prints_its_drilldown_and_changes_with_the_data(
    planted: dict, warehouse_url: str, logins, tmp_path, capsys, monkeypatch: pytest.MonkeyPatch, anchor_file
) -> None:
    from cdp import cli

    monkeypatch.setenv("CDP_WAREHOUSE_URL", logins("cdp_finance"))
    argv = ["funds", "report", "--fund", "GAU-NEW", "--from", "2026-01", "--to", "2026-03", "--out"]
    assert cli.main([*argv, str(tmp_path / "one")]) == 0
    printed = capsys.readouterr().out
    assert cli.main([*argv, str(tmp_path / "two")]) == 0
    capsys.readouterr()
    names = ["changes.csv", "drilldown.sql", "impact.csv", "outcomes.csv", "report.html"]
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == names
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name

    # The CSV is the mart's rows for the fund and period; the HTML has its chart inline and the drill-down.
    want = expected_mart(expected_rows(planted))
    lines = (tmp_path / "one" / "impact.csv").read_text().splitlines()
    body = [line.split(",") for line in lines[1:]]
    assert [(row[0], row[1], row[2], row[5], row[13]) for row in body] == [
        ("New Grant", f"{key[1]:%Y-%m}", key[2] or "", str(want[key][2]), str(want[key][10]))
        for key in sorted(
            (k for k in want if k[0] == "New Grant" and k[1] <= date(2026, 3, 1)),
            key=lambda k: (k[1], k[2] or ""),
        )
    ]
    page = (tmp_path / "one" / "report.html").read_text()
    drilldown = (tmp_path / "one" / "drilldown.sql").read_text()
    assert "<svg" in page and "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert drilldown.strip() in printed and "mart.fund_impact_rows" in page
    with psycopg.connect(warehouse_url) as conn:
        rows = [row for row in conn.execute(drilldown).fetchall() if row[12] == "period"]
    completions = sum(row[5] for row in rows if row[0] == "completion")
    assert completions == sum(Decimal(row[6]) for row in body) > 0
    assert sum(row[8] for row in rows if row[0] == "allocation") == sum(int(row[13]) for row in body)

    # The reviewed program changes behind the attribution are listed, no correction yet.
    changes = (tmp_path / "one" / "changes.csv").read_text().splitlines()
    assert changes[0] == "seq,occurred_at,entity_type,action,entity_id"
    assert {line.split(",")[2] for line in changes[1:]} == {"core.program_course", "core.program_fund"}

    # A correction of a reported row: the re-run differs and names the audit event.
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        completion = conn.execute(
            "SELECT row_id FROM mart.fund_impact_rows WHERE fund = 'New Grant' AND measure = 'completion'"
            " AND month = '2026-03-01' ORDER BY row_id LIMIT 1").fetchone()[0]  # fmt: skip
        conn.execute("UPDATE core.course_completion SET completed_at = '2026-03-20T12:00Z' WHERE completion_id = %s",
                     (completion,))  # fmt: skip
        seq = conn.execute(
            "SELECT max(seq) FROM audit.audit_events WHERE entity_type = 'core.course_completion'"
            " AND action = 'update' AND entity_id = %s", (str(completion),)).fetchone()[0]  # fmt: skip
    assert cli.main([*argv, str(tmp_path / "corrected")]) == 0
    assert f"audit seq {seq}: update of core.course_completion {completion}" in capsys.readouterr().out
    corrected = (tmp_path / "corrected" / "changes.csv").read_text().splitlines()
    assert corrected[:-1] == changes and corrected[-1].startswith(f"{seq},")
    assert f"audit seq {seq}: update of core.course_completion {completion}" in (
        tmp_path / "corrected" / "report.html").read_text()  # fmt: skip

    # New activity in a reported month: the re-run differs.
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        person, course = conn.execute(
            "SELECT person_id, course_id FROM core.enrollment e JOIN core.course c USING (course_id)"
            " WHERE c.source_record_id = 'c4' ORDER BY enrollment_id LIMIT 1").fetchone()  # fmt: skip
        conn.execute(
            "INSERT INTO core.course_completion (person_id, course_id, completed_at, source, source_record_id)"
            " VALUES (%s, %s, '2026-03-10T10:00Z', 'test', 'late')", (person, course))  # fmt: skip
    assert cli.main([*argv, str(tmp_path / "three")]) == 0
    assert (tmp_path / "three" / "impact.csv").read_bytes() != (tmp_path / "one" / "impact.csv").read_bytes()


def test_the_report_shows_outcomes_before_and_after_with_their_rows(
    planted: dict, logins, tmp_path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from cdp import cli

    monkeypatch.setenv("CDP_WAREHOUSE_URL", logins("cdp_finance"))
    truth = [r for r in expected_rows(planted) if r[2] != "allocation"]

    def outcomes(folder) -> dict[str, list[str]]:
        lines = (folder / "outcomes.csv").read_text().splitlines()
        assert lines[0].split(",") == list(impact_report.OUTCOME_COLUMNS)
        return {line.split(",")[0]: line.split(",")[1:] for line in lines[1:]}

    def as_text(values: tuple) -> list[str]:
        return ["" if v is None else str(v) for v in values]

    # Two months against the two before them: an independent computation over the planted rows.
    argv = ["funds", "report", "--fund", "Grant A", "--from", "2026-02", "--to", "2026-03", "--out"]
    assert cli.main([*argv, str(tmp_path / "two")]) == 0
    got = outcomes(tmp_path / "two")
    periods = {
        "before": (date(2025, 12, 1), date(2026, 1, 1)),
        "period": (date(2026, 2, 1), date(2026, 3, 1)),
    }
    for period, (first, last) in periods.items():
        rows = [r for r in truth if r[0] == "Grant A" and first <= r[1] <= last]
        assert got[period] == [f"{first:%Y-%m}", f"{last:%Y-%m}", *as_text(outcome(rows))], period
    assert got["before"][2:] != got["period"][2:]
    # The drill-down printed with the report lists exactly the rows of both periods, with the new measures.
    printed = capsys.readouterr().out
    drilldown = (tmp_path / "two" / "drilldown.sql").read_text()
    assert drilldown.strip() in printed and "reengaged, skills_improved" in drilldown
    with psycopg.connect(logins("cdp_finance")) as conn:
        listed = conn.execute(drilldown).fetchall()
    want = sorted(
        ((r[3], "before" if r[1] < date(2026, 2, 1) else "period", r[10], r[11]) for r in truth
         if r[0] == "Grant A" and date(2025, 12, 1) <= r[1] <= date(2026, 3, 1)),
        key=str,
    )  # fmt: skip
    assert sorted(((r[1], r[12], r[10], r[11]) for r in listed if r[0] != "allocation"), key=str) == want

    # One month: the same figures as the monthly mart's, and its *_before columns.
    assert cli.main([*argv[:5], "2026-02", "--to", "2026-02", "--out", str(tmp_path / "one")]) == 0
    got = outcomes(tmp_path / "one")
    lines = (tmp_path / "one" / "impact.csv").read_text().splitlines()
    mart = dict(zip(lines[0].split(","), lines[1].split(","), strict=True))
    assert got["period"][4:11] == [mart[c] for c in ("survey_responses", "nps_answers", "nps",
                                   "satisfaction_answers", "satisfaction_mean", "skills_answers",
                                   "skills_improved_share")]  # fmt: skip
    assert got["period"][2:4] == [mart["learners_enrolled"], mart["learners_reengaged"]]
    assert [got["before"][i] for i in (4, 6, 8, 10)] == [
        mart[c] for c in ("survey_responses_before", "nps_before", "satisfaction_mean_before",
                          "skills_improved_share_before")]  # fmt: skip
