"""The review queue: pairs the dedupe would not merge on its own, and reviewers' decisions on them."""

from __future__ import annotations

from typing import Any

import psycopg

from cdp import audit
from cdp.identity.errors import DedupeError
from cdp.warehouse import Actor, transaction

SAME = "same"
DIFFERENT = "different"


def review_queue(conn: psycopg.Connection, limit: int = 50) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT * FROM ops.identity_review_queue ORDER BY score DESC, pair_id LIMIT %s", (limit,)
    ).fetchall()


def decide(
    url: str, actor: Actor, pair_id: int, decision: str, reviewer: str, note: str | None = None
) -> int:
    """Record a reviewer's decision; 'different' is final, 'same' is merged by the next run."""
    if decision not in (SAME, DIFFERENT):
        raise DedupeError(f"decision must be {SAME!r} or {DIFFERENT!r}, not {decision!r}")
    if not reviewer or not reviewer.strip():
        raise DedupeError("a decision needs the reviewer's name")
    with transaction(url, actor) as conn:
        pair = conn.execute(
            "SELECT pair_id, person_low, person_high, status FROM ops.identity_pair WHERE pair_id = %s",
            (pair_id,),
        ).fetchone()
        if pair is None:
            raise DedupeError(f"pair {pair_id} is not in the review queue")
        if pair["status"] != "queued":
            raise DedupeError(f"pair {pair_id} is {pair['status']}, not awaiting review")
        decision_id = conn.execute(
            "INSERT INTO ops.identity_decision (pair_id, person_low, person_high, decision, reviewer, note)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING decision_id",
            (pair_id, pair["person_low"], pair["person_high"], decision, reviewer.strip(), note),
        ).fetchone()["decision_id"]
        # The insert trigger moves the pair out of the queue, or refuses when someone decided it meanwhile.
        status = "approved" if decision == SAME else "rejected"
        audit.record_event(
            conn,
            "review_decision",
            "ops.identity_pair",
            str(pair_id),
            {"decision_id": decision_id, "decision": decision, "reviewer": reviewer.strip(),
             "person_low": str(pair["person_low"]), "person_high": str(pair["person_high"])},
            before={"status": pair["status"]},
            after={"status": status},
        )  # fmt: skip
    return int(decision_id)
