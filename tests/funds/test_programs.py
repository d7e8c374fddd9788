"""Programs tied to funds: a course's program and a program's funds change only through a request that
another login with the finance role approves, each step an audit event; every enrollment, completion and
survey response then carries the funds that paid for it that day, with shares, and unmapped activity is
shown as such. Activity is the sandbox's Moodle data; the expected attribution is computed here in Python."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from cdp import cli
from cdp.finance import programs
from cdp.sources import registry
from cdp.sync.engine import sync_stream
from cdp.sync.specs import spec_for
from cdp.warehouse import Actor
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer

STREAMS = ("moodle.users", "moodle.courses", "moodle.enrollments", "moodle.course_completions",
           "salesforce.npsp__General_Accounting_Unit__c")  # fmt: skip


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=23, learners=150, donations=50)


@pytest.fixture
def synced(warehouse_url: str, world: World, tmp_path: Path) -> Iterator[str]:
    with SandboxServer(world, ledger_folder=tmp_path / "ledger-drop") as sandbox:
        for key in STREAMS:
            spec = spec_for(*key.split("."))
            stream = registry.stream(spec.source, spec.stream, sandbox.settings(spec.source))
            sync_stream(warehouse_url, stream, spec, actor=Actor("pytest"), run_id="run-1",
                        interval_end=datetime.now(UTC))  # fmt: skip
    yield warehouse_url


def rows(url: str, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def test_a_program_change_needs_another_login_with_the_finance_role_and_is_audited(
    synced: str, logins
) -> None:
    url = synced
    course = rows(url, "SELECT source || ':' || source_record_id FROM core.course ORDER BY 1 LIMIT 1")[0][0]
    staff, fin = logins("cdp_editor"), logins("cdp_finance")
    change = programs.request_course(
        staff, course, "Digital skills", date(2023, 1, 1), "grant agreement", person="amy"
    )

    for role in ("cdp_editor", "cdp_admin", "cdp_viewer", "cdp_loader"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            programs.approve(url, change, person="someone", role=role)
    # nobody writes the mapping directly
    with pytest.raises(psycopg.errors.InsufficientPrivilege), psycopg.connect(staff) as conn:
        conn.execute("INSERT INTO core.program (name) VALUES ('sneaky')")
    fin_change = programs.request_course(fin, course, "Literacy", date(2023, 2, 1), "mine", person="fin")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="another login must decide"):
        programs.approve(fin, fin_change, person="fin")
    assert rows(url, "SELECT count(*) FROM core.program_course") == [(0,)]

    assert programs.approve(fin, change, "checked the agreement", person="fin") == "applied"
    assert rows(url, "SELECT p.name, pc.valid_from, pc.valid_to FROM core.program_course pc JOIN core.program p"
                     " USING (program_id)") == [("Digital skills", date(2023, 1, 1), None)]  # fmt: skip
    events = rows(
        url,
        "SELECT action, details ->> 'requested_by', details ->> 'approved_by' FROM audit.audit_events"
        " WHERE action LIKE 'program_change.%%' AND entity_id = %s ORDER BY seq",
        (str(change),),
    )
    login = rows(staff, "SELECT session_user::text")[0][0]
    fin_login = rows(fin, "SELECT session_user::text")[0][0]
    assert events == [("program_change.requested", login, None), ("program_change.applied", login, fin_login)]
    assert rows(url, "SELECT count(*) FROM audit.audit_events WHERE entity_type = 'core.program_course'"
                     " AND action = 'insert'") == [(1,)]  # fmt: skip
    # Shares must add up to 1, and a change never rewrites the past.
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="add up to 1"):
        gau = rows(url, "SELECT source_record_id FROM core.fund LIMIT 1")[0][0]
        programs.request_funds(
            staff, "Digital skills", {gau: Decimal("0.5")}, date(2023, 1, 1), "half", person="amy"
        )
    earlier = programs.request_course(staff, course, "Literacy", date(2022, 12, 1), "backdated", person="amy")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="changes apply forward"):
        programs.approve(fin, earlier, person="fin")


def test_every_activity_carries_the_funds_of_its_day_and_unmapped_activity_is_shown(
    synced: str, logins, capsys, monkeypatch: pytest.MonkeyPatch, anchor_file: Path
) -> None:
    url = synced
    courses = [
        row[0] for row in rows(url, "SELECT source || ':' || source_record_id FROM core.course ORDER BY 1")
    ]
    gau = {name: gau_id for gau_id, name in rows(url, "SELECT source_record_id, name FROM core.fund")}
    general, grant, literacy = gau["General Fund"], gau["Digital Skills Grant"], gau["Literacy Fund"]
    staff, fin = logins("cdp_editor"), logins("cdp_finance")
    # The midpoint of the activity: the grant takes over from it, split 60/40 with the literacy fund.
    first, last = rows(url, "SELECT min(enrolled_at), max(enrolled_at) FROM core.enrollment")[0]
    switch = (first + (last - first) / 2).date()
    start = first.date()
    requests = [
        programs.request_course(staff, courses[0], "Digital skills", start, "program plan", person="amy"),
        programs.request_course(staff, courses[1], "Digital skills", start, "program plan", person="amy"),
        programs.request_course(staff, courses[2], "Evening classes", start, "not funded yet", person="amy"),
        programs.request_funds(staff, "Digital skills", {general: Decimal(1)}, start, "until the grant", person="amy"),
        programs.request_funds(staff, "Digital skills", {grant: Decimal("0.6"), literacy: Decimal("0.4")}, switch,
                               "grant agreement", person="amy"),
    ]  # fmt: skip
    monkeypatch.setenv("CDP_WAREHOUSE_URL", fin)
    for change in requests:  # the finance login approves through the command
        assert cli.main(["funds", "approve", str(change), "--by", "fin"]) == 0
    assert cli.main(["funds", "list", "--status", "applied"]) == 0
    assert "5 program changes" in capsys.readouterr().out

    course_id = {f"{source}:{record}": cid for cid, source, record in rows(url, "SELECT course_id, source,"
                 " source_record_id FROM core.course")}  # fmt: skip
    program_of = {course_id[courses[0]]: "Digital skills", course_id[courses[1]]: "Digital skills",
                  course_id[courses[2]]: "Evening classes"}  # fmt: skip
    fund_id = {record: fid for fid, record in rows(url, "SELECT fund_id, source_record_id FROM core.fund")}

    def expected(course, at: datetime) -> set[tuple]:
        program = program_of.get(course)
        day = at.astimezone(UTC).date()
        if program is None or day < start:
            return {(None, None, "unmapped")}
        if program == "Evening classes":
            return {(None, None, "unmapped")}
        if day < switch:
            return {(fund_id[general], Decimal(1), "attributed")}
        return {
            (fund_id[grant], Decimal("0.6"), "attributed"),
            (fund_id[literacy], Decimal("0.4"), "attributed"),
        }

    activity = rows(
        url,
        "SELECT 'enrollment', enrollment_id, course_id, enrolled_at FROM core.enrollment UNION ALL"
        " SELECT 'completion', completion_id, course_id, completed_at FROM core.course_completion",
    )
    attributed: dict[tuple, set[tuple]] = {}
    for kind, activity_id, fund, share, status in rows(
        url,
        "SELECT activity, activity_id, fund_id, share, status FROM mart.activity_fund"
        " WHERE activity IN ('enrollment', 'completion')",
    ):
        attributed.setdefault((kind, activity_id), set()).add(
            (fund, None if share is None else Decimal(share).normalize(), status)
        )
    assert len(attributed) == len(activity)
    kinds = {"attributed": 0, "unmapped": 0}
    for kind, activity_id, course, at in activity:
        want = {(f, None if s is None else s.normalize(), st) for f, s, st in expected(course, at)}
        assert attributed[(kind, activity_id)] == want, (kind, course, at)
        kinds[next(iter(want))[2]] += 1
    assert kinds["attributed"] and kinds["unmapped"]
    assert any(fund == fund_id[grant] for fs in attributed.values() for fund, _, _ in fs), (
        "the change took effect"
    )
    # The shares of each activity add up to 1.
    assert rows(url, "SELECT count(*) FROM (SELECT activity_id FROM mart.activity_fund WHERE status = 'attributed'"
                     " GROUP BY activity_id HAVING sum(share) <> 1) x") == [(0,)]  # fmt: skip
    reasons = {row[0] for row in rows(url, "SELECT DISTINCT unmapped_reason FROM mart.activity_fund")}
    assert {"course in no program that day", "program paid by no fund that day"} <= reasons

    # Survey responses: the course is the respondent's latest enrollment at or before the response.
    learners = rows(url, "SELECT person_id, course_id, enrolled_at FROM core.enrollment WHERE course_id = %s"
                         " ORDER BY enrolled_at", (course_id[courses[0]],))  # fmt: skip
    enrolled = rows(url, "SELECT person_id, course_id, enrolled_at FROM core.enrollment")
    no_enrollment = "NOT EXISTS (SELECT 1 FROM core.enrollment e WHERE e.person_id = p.person_id)"
    stranger = rows(url, f"SELECT person_id FROM core.person p WHERE {no_enrollment} LIMIT 1")[0][0]
    responses = [(person, at + timedelta(days=1)) for person, _, at in (learners[0], learners[-1])]
    responses.append((stranger, learners[0][2]))
    with psycopg.connect(url, autocommit=True) as conn:
        for n, (person, at) in enumerate(responses):
            conn.execute(
                "INSERT INTO core.survey_response (person_id, survey_id, submitted_at, source, source_record_id)"
                " VALUES (%s, 'satisfaction', %s, 'test', %s)",
                (person, at, f"r{n}"),
            )
    got: dict[str, set[tuple]] = {}
    for record, fund, share, status, reason in rows(
        url, "SELECT s.source_record_id, m.fund_id, m.share, m.status, m.unmapped_reason FROM mart.activity_fund m"
        " JOIN core.survey_response s ON s.survey_response_id = m.activity_id WHERE s.source = 'test'"
    ):  # fmt: skip
        got.setdefault(record, set()).add(
            (fund, None if share is None else Decimal(share).normalize(), status)
        )
        if record == "r2":
            assert reason == "no course"
    for n, (person, at) in enumerate(responses):
        mine = [(e_at, course) for p, course, e_at in enrolled if p == person and e_at <= at]
        course = max(mine, key=lambda item: item[0])[1] if mine else None
        want = {(f, None if sh is None else sh.normalize(), st) for f, sh, st in expected(course, at)}
        assert got[f"r{n}"] == want, (n, course)


def test_program_mappings_imported_from_a_csv_are_requested_changes_and_bad_rows_are_kept_with_reasons(
    warehouse_url: str, logins, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch, anchor_file: Path
) -> None:
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        for gau in ("GAU-A", "GAU-B"):
            conn.execute("INSERT INTO core.fund (source, source_record_id, name) VALUES ('salesforce', %s, %s)",
                         (gau, gau.lower()))  # fmt: skip
        conn.execute("INSERT INTO core.course (source, source_record_id, title) VALUES ('test', 'c1', 'C1')")
    staff, fin = logins("cdp_editor"), logins("cdp_finance")
    source = tmp_path / "programs.csv"
    source.write_text(
        "\ufeffkind,program,course,funds,valid_from,reason\n"
        "course,Digital skills,test:c1,,2026-01-01,grant agreement\n"  # line 2: fine
        "funds,Digital skills,,GAU-A=0.6;GAU-B=0.4,2026-01-01,grant agreement\n"  # 3: fine
        "funds,Digital skills,,GAU-A=0.6,2026-01-01,half missing\n"  # 4: shares do not add up (the database says)
        "course,Digital skills,test:nope,,2026-01-01,no such course\n"  # 5: unknown course (the database says)
        "course,Digital skills,test:c1,,01/02/2026,bad date\n"  # 6
        "grant,Digital skills,test:c1,,2026-01-01,bad kind\n"  # 7
        "\n"
        'course,Digital skills,test:c1,,2026-02-01,"a reason\n over two lines",surplus\n'  # 9-10: an extra cell
        "funds,Literacy,,GAU-B=1,2026-03-01,\n",  # 11: no reason (the database says)
        encoding="utf-8",
    )
    monkeypatch.setenv("CDP_WAREHOUSE_URL", staff)

    assert cli.main(["funds", "import-programs", str(source), "--by", "amy"]) == 2

    out = capsys.readouterr().out
    assert "2 program changes requested (they wait for approval by the finance role), 6 rows rejected" in out
    rejects = list(csv.DictReader((tmp_path / "programs.csv.rejected.csv").open()))
    reasons = {int(row["line"]): row["reason"] for row in rejects}
    assert sorted(reasons) == [4, 5, 6, 7, 10, 11]  # a blank line is no row; line 10 ends the row of 9-10
    assert "add up to 1" in reasons[4] and "test:nope" in reasons[5] and "YYYY-MM-DD" in reasons[6]
    assert "course or funds" in reasons[7] and "surplus" in reasons[10] and "reason" in reasons[11]
    assert rejects[4]["course"] == "test:c1" and rejects[4]["reason"].endswith("['surplus']")
    # The good rows are requested changes like `map-course` / `fund-program` makes, audited, awaiting finance.
    changes = programs.list_changes(staff, status="requested", person="amy")
    assert [(c["kind"], c["program"], c["valid_from"]) for c in changes] == [
        ("course", "Digital skills", date(2026, 1, 1)), ("funds", "Digital skills", date(2026, 1, 1))]  # fmt: skip
    assert rows(warehouse_url, "SELECT count(*) FROM audit.audit_events WHERE action = 'program_change.requested'"
                ) == [(2,)]  # fmt: skip
    assert rows(warehouse_url, "SELECT count(*) FROM core.program_course") == [(0,)]
    for change in changes:
        assert programs.approve(fin, change["change_id"], "checked", person="fin") == "applied"
    assert rows(warehouse_url, "SELECT count(*) FROM core.program_fund") == [(2,)]

    # Without the header's columns nothing is requested, and the file says which are missing.
    (tmp_path / "bad.csv").write_text("program,course\nDigital skills,test:c1\n", encoding="utf-8")
    assert cli.main(["funds", "import-programs", str(tmp_path / "bad.csv"), "--by", "amy"]) == 2
    assert "the header lacks kind, funds, valid_from, reason" in capsys.readouterr().out
