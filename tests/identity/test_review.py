"""The review queue: staff decisions are final for every later run, approved pairs merge, each decision is an
audit event; and the run report flags a jump in the duplicate rate."""

from __future__ import annotations

from urllib.parse import quote

import psycopg
import pytest

from cdp import cli
from cdp.identity.errors import DedupeError, DuplicateRateSpike
from cdp.identity.merges import merge_people
from cdp.identity.review import decide, review_queue
from cdp.identity.runs import raise_on_spike, run_dedupe
from cdp.warehouse import Actor, connect, transaction

ACTOR = Actor("pytest:dedupe")


def _pair(url: str, pair_id: int) -> dict:
    with connect(url, ACTOR) as conn:
        return conn.execute("SELECT * FROM ops.identity_pair WHERE pair_id = %s", (pair_id,)).fetchone()


def _first_queued(url: str) -> dict:
    with connect(url, ACTOR) as conn:
        queue = review_queue(conn, limit=5)
    assert queue, "the sandbox leaves possible matches for review"
    return queue[0]


def _as_role(url: str, role: str) -> str:
    return f"{url}?options={quote(f'-c role={role}')}"


def test_a_rejected_pair_is_never_proposed_again(synced_url: str) -> None:
    run_dedupe(synced_url, ACTOR, "night-1")
    pair = _first_queued(synced_url)
    decide(synced_url, ACTOR, pair["pair_id"], "different", "Ada Reviewer", note="twins")

    second = run_dedupe(synced_url, ACTOR, "night-2", full=True)
    third = run_dedupe(synced_url, ACTOR, "night-3", full=True)

    with connect(synced_url, ACTOR) as conn:
        rescored = conn.execute(
            "SELECT count(*) AS n FROM ops.identity_pair_score WHERE run_id IN ('night-2', 'night-3')"
            " AND person_low = %s AND person_high = %s",
            (pair["left_person_id"], pair["right_person_id"]),
        ).fetchone()["n"]
        queued = {row["pair_id"] for row in review_queue(conn, limit=10_000)}
    assert rescored == 2, "the engine still finds the pair each night..."
    assert pair["pair_id"] not in queued, "...but it is never proposed again"
    assert _pair(synced_url, pair["pair_id"])["status"] == "rejected"
    assert second.rejected >= 1 and third.rejected >= 1
    assert _pair(synced_url, pair["pair_id"])["last_run_id"] == "night-1"

    # Without the decision the same pair is back in the queue: the decision is what keeps it out.
    with psycopg.connect(synced_url) as conn:
        conn.execute("DELETE FROM ops.identity_decision WHERE pair_id = %s", (pair["pair_id"],))
        conn.execute("UPDATE ops.identity_pair SET status = 'queued' WHERE pair_id = %s", (pair["pair_id"],))
    run_dedupe(synced_url, ACTOR, "night-4", full=True)
    assert _pair(synced_url, pair["pair_id"])["last_run_id"] == "night-4"
    assert _pair(synced_url, pair["pair_id"])["status"] == "queued"


def test_an_approved_pair_is_merged_by_the_next_run(synced_url: str, audit_events) -> None:
    run_dedupe(synced_url, ACTOR, "night-1")
    pair = _first_queued(synced_url)
    decide(synced_url, ACTOR, pair["pair_id"], "same", "Ada Reviewer")
    assert _pair(synced_url, pair["pair_id"])["status"] == "approved"

    report = run_dedupe(synced_url, ACTOR, "night-2")

    merged = _pair(synced_url, pair["pair_id"])
    assert merged["status"] == "merged" and merged["merge_id"] is not None
    assert report.merged >= 1
    with connect(synced_url, ACTOR) as conn:
        merge = conn.execute(
            "SELECT * FROM ops.identity_merge WHERE merge_id = %s", (merged["merge_id"],)
        ).fetchone()
    assert merge["reason"] == "review" and merge["run_id"] == "night-2"
    assert {str(merge["survivor_id"]), str(merge["absorbed_id"])} == {
        str(pair["left_person_id"]),
        str(pair["right_person_id"]),
    }
    merge_events = [
        e for e in audit_events(synced_url, "merge") if e["details"]["merge_id"] == merged["merge_id"]
    ]
    assert merge_events and merge_events[0]["details"]["reason"] == "review"


def test_program_staff_decide_and_every_decision_is_audited(synced_url: str, audit_events) -> None:
    run_dedupe(synced_url, ACTOR, "night-1")
    pair = _first_queued(synced_url)
    editor_url = _as_role(synced_url, "cdp_editor")

    with connect(editor_url, Actor("reviewer:grace")) as conn:
        assert [row["pair_id"] for row in review_queue(conn, limit=1)] == [pair["pair_id"]]
    decide(editor_url, Actor("reviewer:grace"), pair["pair_id"], "different", "Grace")

    decision_events = audit_events(synced_url, "review_decision")
    assert len(decision_events) == 1
    assert decision_events[0]["entity_id"] == str(pair["pair_id"])
    assert decision_events[0]["details"]["decision"] == "different"
    assert decision_events[0]["details"]["reviewer"] == "Grace"
    with psycopg.connect(synced_url) as conn:
        role, actor = conn.execute(
            "SELECT db_role, actor FROM audit.audit_events WHERE action = 'review_decision'"
        ).fetchone()
    assert (role, actor) == ("cdp_editor", "reviewer:grace")

    # Staff decide, they do not merge: changing people is the loader's job.
    with psycopg.connect(editor_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(
            "UPDATE core.person SET merged_into = NULL WHERE person_id = %s", (pair["left_person_id"],)
        )
    # Nor can they change a pair except by deciding a queued one.
    with psycopg.connect(editor_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(
            "UPDATE ops.identity_pair SET status = 'approved' WHERE pair_id = %s", (pair["pair_id"],)
        )
    with psycopg.connect(editor_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO ops.identity_decision (pair_id, person_low, person_high, decision, reviewer)"
            " VALUES (%s, %s, %s, 'same', 'Grace')",
            (pair["pair_id"], pair["left_person_id"], pair["right_person_id"]),
        )
    assert _pair(synced_url, pair["pair_id"])["status"] == "rejected"
    # Viewers read the queue but cannot decide.
    other = _first_queued(synced_url)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        decide(_as_role(synced_url, "cdp_viewer"), ACTOR, other["pair_id"], "same", "Nobody")
    with pytest.raises(DedupeError, match="not awaiting review"):
        decide(synced_url, ACTOR, pair["pair_id"], "same", "Grace")
    with pytest.raises(DedupeError, match="reviewer"):
        decide(synced_url, ACTOR, other["pair_id"], "same", "  ")
    with pytest.raises(DedupeError, match="not in the review queue"):
        decide(synced_url, ACTOR, 10**9, "same", "Grace")


def test_review_and_unmerge_from_the_command_line(
    synced_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CDP_WAREHOUSE_URL", synced_url)
    assert cli.main(["dedupe", "run", "--run-id", "by-hand"]) == 0
    assert "by-hand" in capsys.readouterr().out
    assert cli.main(["dedupe", "review", "--limit", "3"]) == 0
    listing = capsys.readouterr().out
    pair = _first_queued(synced_url)
    assert f"pair {pair['pair_id']}" in listing and "given_name" in listing

    assert cli.main(["dedupe", "review", "--decide", str(pair["pair_id"]), "different"]) == 2
    assert "--reviewer" in capsys.readouterr().err
    assert (
        cli.main(["dedupe", "review", "--decide", str(pair["pair_id"]), "different", "--reviewer", "Ada"])
        == 0
    )
    assert "never proposed again" in capsys.readouterr().out
    assert _pair(synced_url, pair["pair_id"])["status"] == "rejected"

    with connect(synced_url, ACTOR) as conn:
        merge_id = conn.execute("SELECT min(merge_id) AS m FROM ops.identity_merge").fetchone()["m"]
    assert cli.main(["dedupe", "unmerge", str(merge_id), "--reason", "wrong person"]) == 0
    assert f"merge {merge_id} undone" in capsys.readouterr().out
    assert cli.main(["dedupe", "unmerge", str(merge_id)]) == 1
    assert "already undone" in capsys.readouterr().err


def _history(url: str, rate: float, runs: int = 4) -> None:
    with psycopg.connect(url) as conn:
        for n in range(runs):
            conn.execute(
                "INSERT INTO ops.dedupe_run (run_id, mode, status, started_at, finished_at, people_compared,"
                " duplicate_rate) VALUES (%s, 'incremental', 'succeeded', now() - make_interval(days => %s),"
                " now() - make_interval(days => %s), 500, %s)",
                (f"past-{n}", n + 1, n + 1, rate),
            )


def test_a_jump_in_the_duplicate_rate_is_flagged_and_fails_the_check(synced_url: str) -> None:
    _history(synced_url, 0.01)

    report = run_dedupe(synced_url, ACTOR, "spike", full=True)

    assert report.rate_spike and report.baseline_rate == pytest.approx(0.01)
    assert report.duplicate_rate > 0.1
    with pytest.raises(DuplicateRateSpike):
        raise_on_spike(synced_url, "spike")
    with psycopg.connect(synced_url) as conn:
        stored = conn.execute(
            "SELECT rate_spike, duplicate_rate FROM ops.dedupe_run WHERE run_id = 'spike'"
        ).fetchone()
    assert stored == (True, pytest.approx(report.duplicate_rate))


def test_a_rate_like_recent_runs_is_not_a_spike(synced_url: str) -> None:
    first = run_dedupe(synced_url, ACTOR, "baseline", full=True)
    with psycopg.connect(synced_url) as conn:
        conn.execute("DELETE FROM ops.dedupe_run WHERE run_id = 'baseline'")
    _history(synced_url, first.duplicate_rate)

    report = run_dedupe(synced_url, ACTOR, "steady", full=True)

    assert not report.rate_spike
    raise_on_spike(synced_url, "steady")


def test_a_queued_pair_whose_side_was_merged_is_reviewed_against_the_survivor(synced_url: str) -> None:
    """A chain A~B~C merges B into A and holds B~C back: staff see A against C, and 'same' merges them."""
    with connect(synced_url, ACTOR) as conn:
        a, b, c = (
            str(row["person_id"])
            for row in conn.execute("SELECT person_id FROM core.person ORDER BY person_id LIMIT 3").fetchall()
        )
    with transaction(synced_url, ACTOR) as conn:
        pair_id = conn.execute(
            "INSERT INTO ops.identity_pair (person_low, person_high, first_run_id, last_run_id, score,"
            " match_weight, class, guard, status) VALUES (%s, %s, 'night-0', 'night-0', 0.995, 12.0, 'match',"
            " 'transitive_only', 'queued') RETURNING pair_id",
            (b, c),
        ).fetchone()["pair_id"]
        merge_people(conn, a, b, reason="review")
    with connect(synced_url, ACTOR) as conn:
        shown = {row["pair_id"]: row for row in review_queue(conn, limit=10_000)}[pair_id]
    assert {str(shown["left_person_id"]), str(shown["right_person_id"])} == {a, c}

    decide(synced_url, ACTOR, pair_id, "same", "Ada Reviewer")
    run_dedupe(synced_url, ACTOR, "night-1")

    with connect(synced_url, ACTOR) as conn:
        roots = conn.execute("SELECT ops.person_root(%s) AS a, ops.person_root(%s) AS c", (a, c)).fetchone()
        still_queued = {row["pair_id"] for row in review_queue(conn, limit=10_000)}
    assert roots["a"] == roots["c"], "the approval merged the survivor and the other record"
    assert _pair(synced_url, pair_id)["status"] == "merged"
    assert pair_id not in still_queued
