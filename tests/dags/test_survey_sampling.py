"""End to end: `survey_sampling` under Airflow draws a backfill's weeks oldest first, alerts once on a week whose
completers nobody may be asked, hands each invitation over to the tool once (Typeform links in a segment file),
invites nobody twice when run again, and without params draws last week."""

from __future__ import annotations

import csv
import json
import sys
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest

from cdp.surveys.sampling import previous_week
from cdp_sandbox.server import SandboxServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "surveys"))
from survey_world import build_week  # noqa: E402

FIRST = date(2026, 10, 5)
WEEKS = [FIRST + timedelta(weeks=n) for n in range(4)]


@pytest.mark.slow
def test_a_backfill_run_draws_each_week_once_in_order_and_alerts_on_an_empty_one(
    load_dag,
    warehouse_url: str,
    slack_receiver: SandboxServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
    # The organisation's tool (the default param, typeform): its connection names the form.
    monkeypatch.setenv("AIRFLOW_CONN_TYPEFORM", json.dumps({
        "conn_type": "http", "host": "https://api.typeform.com", "password": "tf-token",
        "extra": {"form_id": "AbC123", "form_host": "acme.typeform.com"}}))  # fmt: skip
    segments = tmp_path / "reports" / "segments"
    monkeypatch.setenv("CDP_REPORT_FOLDERS", str(tmp_path / "reports"))
    with psycopg.connect(warehouse_url) as conn:
        first = build_week(conn, WEEKS[0], {"A": 300, "B": 80}, seed=1)
        repeat = [(pid, c.kind) for pid, c in first.completers.items()]
        for n, week in enumerate(WEEKS[1:3], 1):
            build_week(
                conn, week, {"A": 300, "B": 80}, seed=n + 1, courses=first.courses, people=list(repeat)
            )
        # The last week's completers all lack surveys consent (minors without parental consent).
        build_week(conn, WEEKS[3], {"A": 5}, seed=4, courses=first.courses,
                   people=[(pid, c.kind) for pid, c in first.completers.items()
                           if c.kind == "minor_without_parental_consent"][:5])  # fmt: skip
        last = previous_week(None)
        build_week(conn, last, {"A": 40}, seed=5, courses=first.courses)
    conf = {"week": WEEKS[0].isoformat(), "through_week": WEEKS[-1].isoformat(), "fraction": 0.2,
            "segment_dir": str(segments)}  # fmt: skip

    dag = load_dag("survey_sampling")
    assert dag.test(run_conf=conf, logical_date=None).state == "success"

    with psycopg.connect(warehouse_url) as conn:
        draws = conn.execute(
            "SELECT sample_week, completers, frame, sampled FROM ops.survey_draw ORDER BY drawn_at, sample_week"
        ).fetchall()
        invited = [row[0] for row in conn.execute("SELECT person_id FROM ops.survey_invitation")]
    assert [d[0] for d in draws] == WEEKS  # oldest first
    assert draws[3][1] == 5 and draws[3][3] == 0
    assert all(d[3] > 0 for d in draws[:3]) and len(invited) == len(set(invited)) == sum(d[3] for d in draws)
    # Every invitation handed over once: its prefilled link in the one segment file, recorded in the ledger.
    (segment,) = segments.iterdir()
    linked = {row["invitation_id"]: row["survey_link"] for row in csv.DictReader(segment.open())}
    with psycopg.connect(warehouse_url) as conn:
        ledger = dict(conn.execute("SELECT invitation_id::text, tool_ref FROM ops.survey_handover"
                                   " WHERE outcome = 'handed_over'").fetchall())  # fmt: skip
    assert len(linked) == len(invited) and ledger == linked
    assert all(link.endswith(f"#invitation_id={i}") for i, link in linked.items())
    (message,) = [m["payload"]["text"] for m in slack_receiver.slack_messages]
    assert f"completer-satisfaction/{WEEKS[3]}" in message and "5 people completed a course" in message

    # Run again: nothing new drawn, nobody invited twice, the same alert not sent twice.
    assert dag.test(run_conf=conf, logical_date=None).state == "success"
    with psycopg.connect(warehouse_url) as conn:
        again = [row[0] for row in conn.execute("SELECT person_id FROM ops.survey_invitation")]
    assert sorted(again) == sorted(invited) and len(slack_receiver.slack_messages) == 1
    assert len(list(segments.iterdir())) == 1  # nothing handed over twice, no second segment

    # A run without a week (a scheduled or manual one) draws the week before today. (dag.test keeps an earlier
    # run's conf in the DAG's params: the defaults are given back explicitly.)
    defaults = {"week": None, "through_week": None, "fraction": 0.1}
    assert dag.test(run_conf=defaults, logical_date=None).state == "success"
    with psycopg.connect(warehouse_url) as conn:
        drawn = conn.execute("SELECT completers, frame, sampled FROM ops.survey_draw WHERE sample_week = %s",
                             (last,)).fetchone()  # fmt: skip
    assert drawn[0] == 40 and 0 < drawn[2] == int(0.1 * drawn[1] + 0.5)


@pytest.mark.parametrize(
    ("tool", "connection", "named"),
    [
        ("zigpoll", None, "no Airflow connection 'zigpoll'"),
        ("zigpoll", {"conn_type": "http", "host": "https://v1.zigpoll.com", "extra": {}},
         r"zigpoll connection: extra\['survey_page_url'\]"),
        ("surveymonkey", {"conn_type": "http", "host": "https://api.surveymonkey.com/v3", "password": "t",
                          "extra": {"survey_id": "1"}}, r"surveymonkey connection: extra\['invitation_field'\]"),
    ],
)  # fmt: skip
def test_the_hand_over_fails_at_once_naming_a_missing_setting(
    tool: str, connection: dict | None, named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from airflow.sdk.exceptions import AirflowFailException

    from cdp.runtime.surveys import hand_over_task

    monkeypatch.delenv(f"AIRFLOW_CONN_{tool.upper()}", raising=False)
    if connection:
        monkeypatch.setenv(f"AIRFLOW_CONN_{tool.upper()}", json.dumps(connection))
    # No warehouse is reachable here: the settings are checked first.
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", "postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(AirflowFailException, match=named):
        hand_over_task(
            {"tool": tool, "survey_key": "s"}, SimpleNamespace(dag_id="survey_sampling", run_id="r")
        )
