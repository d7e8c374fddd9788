"""Every unlocked reward is delivered by the platform exactly once, across re-runs and repeated requests; while
the platform is down rewards wait in the manual queue with an audit event, and the queue drains on recovery."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import psycopg
import pytest

from cdp.referrals.fulfilment import RewardPlatform, fulfil_rewards, idempotency_key
from cdp.warehouse import Actor
from cdp_sandbox.faults import Fault
from cdp_sandbox.server import SandboxServer

ACTOR = Actor("pytest")
NOW = datetime(2025, 1, 15, tzinfo=UTC)


def _earned(world) -> set[tuple[str, int]]:
    table = world.table("referralhero", "subscribers")
    return {
        (table.id_of(i), reward_id)
        for i in range(len(table))
        if int(table.malformed[i]) == 0
        for reward_id, threshold in ((100, 3), (101, 10))
        if int(table.columns["people_referred"][i]) >= threshold
    }


def _ledger(url: str) -> Counter[str]:
    with psycopg.connect(url) as conn:
        return Counter(status for (status,) in conn.execute("SELECT status FROM ops.reward_fulfilment"))


def _events(url: str, action: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) FROM audit.audit_events WHERE action = %s", (action,)
        ).fetchone()[0]


@pytest.fixture
def settings(referral_sandbox: SandboxServer):
    return referral_sandbox.settings("referralhero", max_attempts=2, retry_base_delay=0.01)


def test_each_reward_is_delivered_exactly_once_across_reruns(
    warehouse_url: str, synced: None, referral_sandbox: SandboxServer, referral_world, settings
) -> None:
    earned = _earned(referral_world)
    assert len(earned) >= 3, "the world must unlock rewards"

    first = fulfil_rewards(warehouse_url, settings, actor=ACTOR, run_id="run-1", now=NOW)
    again = fulfil_rewards(warehouse_url, settings, actor=ACTOR, run_id="run-2", now=NOW)

    desk = referral_sandbox.apis.reward_desk
    assert (first.fulfilled, first.queued, again.fulfilled, again.queued) == (len(earned), 0, 0, 0)
    assert set(desk.sent) == earned and set(desk.sent.values()) == {1}
    assert _ledger(warehouse_url) == {"fulfilled": len(earned)}
    assert _events(warehouse_url, "reward_fulfilment") == len(earned)


def test_a_repeated_request_with_the_key_is_not_a_second_delivery(
    referral_sandbox: SandboxServer, settings
) -> None:
    desk = referral_sandbox.apis.reward_desk
    subscriber, reward = sorted(_earned(referral_sandbox.world))[0]
    platform = RewardPlatform(settings)
    key = idempotency_key(f"{subscriber}:{reward}")
    platform.mark_sent(subscriber, str(reward), key)
    platform.mark_sent(subscriber, str(reward), key)  # e.g. a run that died before recording the answer
    assert desk.sent[subscriber, reward] == 1
    # Breaking the rule: without the key the platform sends the reward again.
    platform.http.request("POST",
                          f"/api/v2/lists/{platform.list_uuid}/subscribers/{subscriber}/rewards/{reward}/status",
                          json={"status": "sent"})  # fmt: skip
    assert desk.sent[subscriber, reward] == 2


def test_while_the_platform_is_down_rewards_wait_for_people_and_drain_on_recovery(
    warehouse_url: str, synced: None, referral_sandbox: SandboxServer, referral_world, settings
) -> None:
    earned = _earned(referral_world)
    outage = referral_sandbox.faults.add(Fault("server_error", "referralhero", "reward_status", status=503))

    down = fulfil_rewards(warehouse_url, settings, actor=ACTOR, run_id="down-1", now=NOW)
    still_down = fulfil_rewards(warehouse_url, settings, actor=ACTOR, run_id="down-2", now=NOW)

    desk = referral_sandbox.apis.reward_desk
    assert down.platform_down and (down.fulfilled, down.queued) == (0, len(earned))
    assert (still_down.fulfilled, still_down.queued) == (0, 0)  # already queued: nothing new
    assert outage.hits == 2 * settings.extra["max_attempts"], "one call per run, then the rest queue unasked"
    assert not desk.sent
    with psycopg.connect(warehouse_url) as conn:
        queue = conn.execute("SELECT count(*), count(*) FILTER (WHERE last_error LIKE 'TransientError%%')"
                             " FROM ops.reward_fulfilment_queue").fetchone()  # fmt: skip
    assert queue == (len(earned), len(earned))
    assert _events(warehouse_url, "reward_fallback_queued") == len(earned)

    # Staff fulfil one by hand from the queue; the platform comes back; the next run drains the rest.
    with psycopg.connect(warehouse_url) as conn:
        by_hand = conn.execute(
            "UPDATE ops.reward_fulfilment SET status = 'fulfilled_manually', fulfilled_at = now(),"
            " fulfilled_by = 'staff:ops' WHERE idempotency_key = (SELECT min(idempotency_key) FROM"
            " ops.reward_fulfilment) RETURNING subscriber_id, platform_reward_id::int"
        ).fetchone()
    referral_sandbox.faults.remove(outage.id)
    back = fulfil_rewards(warehouse_url, settings, actor=ACTOR, run_id="back", now=NOW)

    assert (back.fulfilled, back.drained, back.queued) == (0, len(earned) - 1, 0)
    assert set(desk.sent) == earned - {tuple(by_hand)} and set(desk.sent.values()) == {1}
    assert _ledger(warehouse_url) == {"fulfilled": len(earned) - 1, "fulfilled_manually": 1}
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("SELECT count(*) FROM ops.reward_fulfilment_queue").fetchone()[0] == 0


def test_a_reward_the_platform_refuses_waits_alone_and_the_others_go_through(
    warehouse_url: str, synced: None, referral_sandbox: SandboxServer, referral_world, settings
) -> None:
    earned = _earned(referral_world)
    with psycopg.connect(warehouse_url) as conn:  # a reward the platform has no record of
        (unknown,) = conn.execute(
            "UPDATE core.reward SET source_record_id = split_part(source_record_id, ':', 1) || ':999'"
            " WHERE source_record_id = (SELECT min(source_record_id) FROM core.reward) RETURNING source_record_id"
        ).fetchone()

    result = fulfil_rewards(warehouse_url, settings, actor=ACTOR, run_id="run-1", now=NOW)

    assert not result.platform_down and (result.fulfilled, result.queued) == (len(earned) - 1, 1)
    with psycopg.connect(warehouse_url) as conn:
        queued = conn.execute(
            "SELECT idempotency_key, last_error FROM ops.reward_fulfilment_queue"
        ).fetchall()
    assert [(key, error.split(":")[0]) for key, error in queued] == [
        (idempotency_key(unknown), "ContractError")
    ]
    assert len(referral_sandbox.apis.reward_desk.sent) == len(earned) - 1
