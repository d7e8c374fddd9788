"""The funder report DAG: runs on the reconciliation's Asset, as its own read-only login, writes every fund's
report of a closed month (the files `cdp funds report` writes, byte for byte), gives the same bytes on a re-run,
and names an audited correction of a reported row when the data changed."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from cdp.finance import impact_report, programs
from cdp.runtime.assets import RECONCILIATION_NAME

MONTH = "2026-10"
#: A `warehouse` connection nobody answers: a run that used it instead of its family's would fail.
UNREACHABLE = "postgresql://nobody@127.0.0.1:9/cdp"


def test_the_funder_report_dag_runs_on_the_reconciliations_asset(load_dag) -> None:
    report = load_dag("cdp_funder_report")
    assert report.timetable.asset_condition.name == RECONCILIATION_NAME
    assert [task.task_id for task in report.tasks] == ["write_reports"]


@pytest.fixture
def funded(warehouse_url: str, logins) -> dict[str, str]:
    """Two funds paying 70/30 for one course's program, a third paying for nothing; activity in October 2026
    and September (the period before), a survey answer each month."""
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ops.survey_measure (source, question, measure) VALUES ('typeform', 'skills', 'skills')"
        )
        for gau, name in (("GAU1", "Grant One"), ("GAU2", "Grant Two"), ("GAU3", "Idle Grant")):
            conn.execute("INSERT INTO core.fund (source, source_record_id, name) VALUES ('salesforce', %s, %s)",
                         (gau, name))  # fmt: skip
        course = conn.execute(
            "INSERT INTO core.course (source, source_record_id, title) VALUES ('test', 'c1', 'C1')"
            " RETURNING course_id").fetchone()[0]  # fmt: skip
        for n, (enrolled, completed, answers) in enumerate([
            ("2026-09-03T10:00Z", None, '{"nps": 6, "skills": 2}'),
            ("2026-10-02T10:00Z", "2026-10-20T10:00Z", '{"nps": 10, "satisfaction": 5, "skills": 5}'),
            ("2026-10-05T10:00Z", "2026-10-25T10:00Z", '{"nps": 9, "skills": true}'),
        ]):  # fmt: skip
            person = conn.execute(
                "INSERT INTO core.person (is_learner) VALUES (true) RETURNING person_id").fetchone()[0]  # fmt: skip
            conn.execute(
                "INSERT INTO core.enrollment (person_id, course_id, enrolled_at, source, source_record_id)"
                " VALUES (%s, %s, %s, 'test', %s)", (person, course, enrolled, f"e{n}"))  # fmt: skip
            if completed:
                conn.execute(
                    "INSERT INTO core.course_completion (person_id, course_id, completed_at, source, source_record_id)"
                    " VALUES (%s, %s, %s, 'test', %s)", (person, course, completed, f"k{n}"))  # fmt: skip
            conn.execute(
                "INSERT INTO core.survey_response (person_id, survey_id, submitted_at, answers, source,"
                " source_record_id) VALUES (%s, 'outcome', %s::timestamptz + interval '1 day', %s, 'typeform', %s)",
                (person, completed or enrolled, answers, f"s{n}"))  # fmt: skip
    staff, fin = logins("cdp_editor"), logins("cdp_finance")
    start = date(2026, 1, 1)
    for change in (
        programs.request_course(staff, "test:c1", "Skills", start, "plan", person="amy"),
        programs.request_funds(staff, "Skills", {"GAU1": Decimal("0.7"), "GAU2": Decimal("0.3")}, start, "grant",
                               person="amy"),
    ):  # fmt: skip
        assert programs.approve(fin, change, "checked", person="fin") == "applied"
    return {"funder": logins("cdp_funder_report"), "finance": fin}


def files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.mark.slow
def test_the_dag_writes_every_funds_report_reproducibly_as_its_own_login(
    load_dag, warehouse_url: str, funded: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", UNREACHABLE)
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_FUNDER_REPORT", funded["funder"])
    folder = tmp_path / "home" / "funder_reports" / f"funder-reports-{MONTH}"

    assert load_dag("cdp_funder_report").test(run_conf={"month": MONTH}, logical_date=None).state == "success"
    first = files(folder)
    assert sorted({name.split("/")[0] for name in first}) == [
        "GAU1",
        "GAU2",
        "GAU3",
        "SHA256SUMS",
        "funds.csv",
    ]
    listed = list(csv.DictReader((folder / "funds.csv").open()))
    assert [(row["folder"], row["name"]) for row in listed] == [
        ("GAU1", "Grant One"), ("GAU2", "Grant Two"), ("GAU3", "Idle Grant")]  # fmt: skip
    # Each fund's files are those `cdp funds report` writes for the month, byte for byte (finance's login).
    for gau in ("GAU1", "GAU2", "GAU3"):
        with psycopg.connect(funded["finance"]) as conn:
            impact_report.write(conn, gau, date(2026, 10, 1), date(2026, 10, 1), tmp_path / "by-hand" / gau)
        by_hand = files(tmp_path / "by-hand" / gau)
        assert {name: data for name, data in first.items() if name.startswith(f"{gau}/")} == {
            f"{gau}/{name}": data for name, data in by_hand.items()
        }
    impact = list(csv.DictReader(io_text(first["GAU1/impact.csv"])))
    assert [(r["learners_enrolled"], r["completions_weighted"], r["skills_improved_share"], r["nps_before"])
            for r in impact] == [("2", "1.400000", "1.0000", "-100.0")]  # fmt: skip
    assert list(csv.DictReader(io_text(first["GAU3/impact.csv"]))) == []  # a fund with no activity: no rows
    outcomes = {r["period"]: r for r in csv.DictReader(io_text(first["GAU2/outcomes.csv"]))}
    assert (outcomes["before"]["first_month"], outcomes["before"]["skills_improved_share"]) == (
        "2026-09",
        "0.0000",
    )
    sums = (folder / "SHA256SUMS").read_text()
    assert "GAU1/report.html" in sums and "funds.csv" in sums

    # A re-run for the closed month: the same bytes.
    assert load_dag("cdp_funder_report").test(run_conf={"month": MONTH}, logical_date=None).state == "success"
    assert files(folder) == first

    # An audited correction of a reported row: the re-run differs and names it by its audit sequence number.
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        completion = conn.execute(
            "SELECT completion_id FROM core.course_completion WHERE source_record_id = 'k2'").fetchone()[0]  # fmt: skip
        conn.execute("UPDATE core.course_completion SET completed_at = '2026-10-26T10:00Z' WHERE completion_id = %s",
                     (completion,))  # fmt: skip
        seq = conn.execute(
            "SELECT max(seq) FROM audit.audit_events WHERE entity_type = 'core.course_completion'"
            " AND action = 'update' AND entity_id = %s", (str(completion),)).fetchone()[0]  # fmt: skip
    assert load_dag("cdp_funder_report").test(run_conf={"month": MONTH}, logical_date=None).state == "success"
    corrected = files(folder)
    assert corrected != first and corrected["GAU3/changes.csv"] == first["GAU3/changes.csv"]
    for gau in ("GAU1", "GAU2"):
        assert f"audit seq {seq}: update of core.course_completion {completion}" in corrected[
            f"{gau}/report.html"].decode()  # fmt: skip
        assert corrected[f"{gau}/changes.csv"].decode().splitlines()[-1].startswith(f"{seq},")
    assert {r["folder"]: r["changes"].split()[-1] for r in csv.DictReader(io_text(corrected["funds.csv"]))
            if r["changes"]} == {"GAU1": str(seq), "GAU2": str(seq)}  # fmt: skip


def io_text(data: bytes) -> io.StringIO:
    return io.StringIO(data.decode())


def test_the_reports_login_reads_the_marts_and_no_person_and_refuses_an_open_month(
    warehouse_url: str, logins, tmp_path: Path
) -> None:
    funder = logins("cdp_funder_report")
    with psycopg.connect(funder) as conn:
        assert conn.execute("SELECT count(*) FROM mart.fund_impact_monthly").fetchone() == (0,)
        for query in ("SELECT * FROM core.person", "SELECT after FROM audit.readable_events",
                      "SELECT answers FROM core.survey_response", "UPDATE core.fund SET name = name"):  # fmt: skip
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(query)
            conn.rollback()
    with psycopg.connect(funder) as conn, pytest.raises(ValueError, match="not closed yet"):
        impact_report.write_month(conn, f"{date.today():%Y-%m}", tmp_path)
    assert not list(tmp_path.iterdir())
