"""The audit head is anchored after every run that writes audit events, to a file only the pipeline can write,
and `cdp audit verify` says how many rows lie past the last anchor (issue 15, item 10)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import psycopg
import pytest

from cdp import audit
from cdp.cli import main


def _head(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT max(seq) FROM audit.audit_events").fetchone()[0]


def _anchored(path: Path) -> list[int]:
    return [json.loads(line)["seq"] for line in path.read_text().splitlines()]


def test_a_dag_run_that_writes_audit_events_anchors_the_head_at_its_end(
    load_dag, warehouse_url: str, anchor_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
    monkeypatch.setenv("CDP_IMPORT_FOLDERS", str(tmp_path))
    sheet = tmp_path / "legacy_referrals.csv"
    sheet.write_text("Ref,Referrer email,Referred email,Date,Status\nnot,a,valid,row,here\n")
    dag = load_dag("referral_migration").partial_subset(
        "import_legacy_sheet", include_upstream=False, include_downstream=False
    )

    assert dag.test(run_conf={"legacy_file": str(sheet)}).state == "success"

    head = _head(warehouse_url)
    assert head is not None and head >= 1
    assert _anchored(anchor_file) == [head]
    assert stat.S_IMODE(anchor_file.stat().st_mode) == 0o600

    # The same sheet again writes no audit event: the anchor step adds no line.
    assert dag.test(run_conf={"legacy_file": str(sheet)}).state == "success"
    assert _head(warehouse_url) == head
    assert _anchored(anchor_file) == [head]


def test_a_failed_task_anchors_what_it_committed_before_failing(
    load_dag, warehouse_url: str, anchor_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
    with psycopg.connect(warehouse_url) as conn:  # events committed by someone, e.g. a task before it failed
        conn.execute("INSERT INTO core.person (given_name) VALUES ('Grace')")
    dag = load_dag("referral_migration").partial_subset(
        "import_legacy_sheet", include_upstream=False, include_downstream=False
    )

    dag_run = dag.test(run_conf={"legacy_file": "/etc/passwd"})  # refused: the task fails

    assert {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()} == {
        "import_legacy_sheet": "failed"
    }
    assert _anchored(anchor_file) == [_head(warehouse_url)]


def test_the_anchor_file_is_created_for_its_owner_only_whatever_the_umask(
    warehouse_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "anchors" / "audit-anchors.jsonl"
    with psycopg.connect(warehouse_url) as conn:
        conn.execute("INSERT INTO core.person (given_name) VALUES ('Ada')")
        conn.commit()
        previous = os.umask(0)
        try:
            assert audit.export_head(conn, path) is not None
        finally:
            os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_world_readable_anchor_file_is_narrowed_and_a_symlink_is_refused(
    warehouse_url: str, tmp_path: Path
) -> None:
    old = tmp_path / "old.jsonl"
    old.write_text("")
    old.chmod(0o644)
    target = tmp_path / "elsewhere.txt"
    target.write_text("untouched\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    with psycopg.connect(warehouse_url) as conn:
        conn.execute("INSERT INTO core.person (given_name) VALUES ('Ada')")
        conn.commit()
        audit.export_head(conn, old)
        with pytest.raises(audit.AnchorFileRefused):
            audit.export_head(conn, link)
    assert stat.S_IMODE(old.stat().st_mode) == 0o600 and len(_anchored(old)) == 1
    assert target.read_text() == "untouched\n"


def test_verify_reports_how_many_rows_lie_past_the_last_anchor(
    warehouse_url: str, anchor_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
    with psycopg.connect(warehouse_url) as conn:
        conn.execute("INSERT INTO core.person (given_name) VALUES ('Grace')")
    assert main(["audit", "verify"]) == 0
    assert "no anchor yet: 1 rows unanchored" in capsys.readouterr().out

    assert main(["audit", "head", "--export"]) == 0
    with psycopg.connect(warehouse_url) as conn:
        conn.execute("INSERT INTO core.person (given_name) VALUES ('Ada')")
        conn.execute("INSERT INTO core.person (given_name) VALUES ('Alan')")
    capsys.readouterr()

    assert main(["audit", "verify"]) == 0
    assert "audit chain OK: 3 rows" in (out := capsys.readouterr().out)
    assert "2 rows past the last anchor (seq 1)" in out
    with psycopg.connect(warehouse_url) as conn:
        report = audit.verify(conn, audit.read_anchors(anchor_file))
    assert (report.last_anchor, report.unanchored) == (1, 2)


def _seed_donation(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO core.donation (financial_transaction_id, amount_minor, currency, received_at, status,"
            " source, source_record_id) VALUES ('FT-ANCHOR-1', 4000, 'USD', now(), 'succeeded', 'stripe', 'ch_a1')"
        )


def test_an_audited_cli_write_anchors_the_head_itself(
    warehouse_url: str, anchor_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
    _seed_donation(warehouse_url)
    assert main(["audit", "head", "--export"]) == 0
    before = _anchored(anchor_file)

    assert main(["finance", "correction", "request", "FT-ANCHOR-1", "--set", "amount_minor=4500",
                 "--reason", "receipt says 45", "--role", "cdp_editor", "--by", "pat"]) == 0  # fmt: skip

    assert _anchored(anchor_file)[-1] == _head(warehouse_url) > before[-1]
    with psycopg.connect(warehouse_url) as conn:
        report = audit.verify(conn, audit.read_anchors(anchor_file))
    assert report.ok and report.unanchored == 0


def test_a_cli_that_may_not_write_the_anchor_file_says_which_rows_await_an_anchor(
    warehouse_url: str, anchor_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
    _seed_donation(warehouse_url)
    assert main(["audit", "head", "--export"]) == 0
    anchored = _anchored(anchor_file)[-1]
    # The pipeline's file, as the operator sees it: someone else's (here: a symlink, refused the same way).
    pipeline_file = anchor_file.with_name("pipeline-anchors.jsonl")
    anchor_file.rename(pipeline_file)
    anchor_file.symlink_to(pipeline_file)
    capsys.readouterr()

    assert main(["finance", "correction", "request", "FT-ANCHOR-1", "--set", "amount_minor=4500",
                 "--reason", "receipt says 45", "--role", "cdp_editor", "--by", "pat"]) == 0  # fmt: skip

    head = _head(warehouse_url)
    assert f"audit rows seq {anchored + 1}..{head} await an anchor" in capsys.readouterr().err
    assert _anchored(pipeline_file)[-1] == anchored  # nothing written through the link
    assert main(["audit", "verify", "--anchor-file", str(pipeline_file)]) == 0
    assert f"seq {anchored + 1}..{head} await an anchor" in capsys.readouterr().out
