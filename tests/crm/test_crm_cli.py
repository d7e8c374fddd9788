"""`cdp crm conflicts` lists the held fields without their values; `cdp crm resolve` decides one, audited."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from cdp import cli


def test_conflicts_are_listed_and_resolved_from_the_command_line(
    warehouse_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CDP_WAREHOUSE_URL", warehouse_url)
    person = str(uuid.uuid4())
    with psycopg.connect(warehouse_url) as conn:
        conn.execute(
            "INSERT INTO ops.crm_push_state (person_id, external_id, crm_id, field_hashes)"
            " VALUES (%s, %s, '003SB0000000000001', '{\"Email\": \"ours\"}')",
            (person, person),
        )
        conflict_id = conn.execute(
            "INSERT INTO ops.crm_push_conflict (person_id, field, crm_id, pushed_hash, crm_hash, detected_run_id)"
            " VALUES (%s, 'Email', '003SB0000000000001', 'ours', 'theirs', 'run-1') RETURNING conflict_id",
            (person,),
        ).fetchone()[0]

    assert cli.main(["crm", "conflicts"]) == 0
    listed = capsys.readouterr().out
    assert f"{conflict_id}\tperson {person}\tEmail" in listed and "1 open conflicts" in listed

    assert cli.main(["crm", "resolve", str(conflict_id), "push_warehouse", "--reviewer", "ana"]) == 0
    assert cli.main(["crm", "resolve", str(conflict_id), "keep_crm"]) == 1  # already decided
    with psycopg.connect(warehouse_url) as conn:
        state = conn.execute(
            "SELECT field_hashes->>'Email' FROM ops.crm_push_state WHERE person_id = %s", (person,)
        ).fetchone()
        event = conn.execute(
            "SELECT actor, details->>'decision' FROM audit.audit_events WHERE action = 'crm_push_conflict_resolved'"
        ).fetchone()
    assert state == ("theirs",)  # the CRM's value now counts as pushed: the next run overwrites it
    assert event == ("cli:ana", "push_warehouse")
