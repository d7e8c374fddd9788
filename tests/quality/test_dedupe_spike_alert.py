"""A jump in the dedupe duplicate rate is a data alert: sent once to Slack, not repeated while unchanged,
reported once more when it clears. The spike itself is computed by the dedupe's own ``finish_run``."""

from __future__ import annotations

import json

import psycopg
import pytest

from cdp.identity.runs import finish_run
from cdp.quality.data_alerts import DUPLICATE_SPIKE_KEY, alert_once, duplicate_spike_findings
from cdp.runtime import data_alert_sender
from cdp.warehouse import Actor
from cdp_sandbox.server import SandboxServer

ACTOR = Actor("pytest")
COMPARED = 400


def _night(url: str, run_id: str, people_in_pairs: int):
    """One dedupe run that compared COMPARED people and found ``people_in_pairs`` of them in pairs."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ops.dedupe_run (run_id, mode, status, people_compared, details)"
            " VALUES (%s, 'incremental', 'running', %s, %s)",
            (run_id, COMPARED, json.dumps({"people_in_pairs": people_in_pairs})),
        )
    report = finish_run(url, ACTOR, run_id)
    outcome = alert_once(
        url, scope="dedupe_spike:", title="Duplicates", run_id=run_id,
        findings=duplicate_spike_findings(url, run_id, ACTOR), send=data_alert_sender(), actor=ACTOR,
    )  # fmt: skip
    return report, outcome


def test_a_duplicate_rate_spike_alerts_once_and_clears_once(
    warehouse_url: str, sandbox: SandboxServer
) -> None:
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        for n in range(4):  # four quiet nights: 1% duplicates
            conn.execute(
                "INSERT INTO ops.dedupe_run (run_id, mode, status, started_at, people_compared, duplicate_rate)"
                " VALUES (%s, 'incremental', 'succeeded', now() - make_interval(days => %s), %s, 0.01)",
                (f"past-{n}", n + 1, COMPARED),
            )

    quiet, nothing = _night(warehouse_url, "night-0", 5)  # 1.25%: no spike, nothing to say
    assert not quiet.rate_spike and not nothing.sent and sandbox.slack_messages == []

    spike, first = _night(warehouse_url, "night-1", 80)  # 20%
    assert spike.rate_spike and first.new_or_changed == (DUPLICATE_SPIKE_KEY,)
    assert [m["payload"]["text"] for m in sandbox.slack_messages] == [
        ":warning: *Duplicates* — run `night-1`\n"
        "• *duplicate rate spike*: dedupe incremental run `night-1` found 20.0% of 400 people compared in a "
        "duplicate pair, against 1.0% in recent runs (0 merged, 0 queued for review). An import probably "
        "created people twice.\n  repair: check the latest syncs (a source that changed its ids, a broken "
        "mapping), look at ops.dedupe_run and the newest ops.identity_merge rows, undo wrong merges with "
        "`cdp dedupe unmerge MERGE_ID`"
    ]

    still, same = _night(warehouse_url, "night-2", 81)  # 20.25%: the same situation
    assert still.rate_spike and not same.sent and same.unchanged == (DUPLICATE_SPIKE_KEY,)
    assert len(sandbox.slack_messages) == 1

    back, cleared = _night(warehouse_url, "night-3", 4)  # 1%: back to normal
    assert not back.rate_spike and cleared.cleared == (DUPLICATE_SPIKE_KEY,)
    assert sandbox.slack_messages[-1]["payload"]["text"] == (
        f":warning: *Duplicates* — run `night-3`\n• cleared: {DUPLICATE_SPIKE_KEY}"
    )
    assert len(sandbox.slack_messages) == 2
    with psycopg.connect(warehouse_url) as conn:
        state = conn.execute("SELECT alert_key, active, times_seen FROM ops.alert_state").fetchall()
    assert state == [(DUPLICATE_SPIKE_KEY, False, 2)]


def test_an_unfinished_run_has_no_findings_to_give(warehouse_url: str) -> None:
    with pytest.raises(ValueError, match="has not finished"):
        duplicate_spike_findings(warehouse_url, "never-ran", ACTOR)
