"""Reward fulfilment: every reward the platform unlocks is delivered exactly once, by the platform or by people.

For each unlocked reward not yet fulfilled, the run first claims it in ``ops.reward_fulfilment`` under its
idempotency key (``reward-fulfilment:<reward source id>``) and commits, then asks ReferralHero to mark it
sent with that key as ``Idempotency-Key``, then records the answer. A run that dies in between leaves the
claim as ``requested``; the next run asks again with the same key and the platform answers as before
without sending the reward twice. While the platform is down (its retries exhausted), the reward and every
one after it in the run go to the manual fallback queue (``ops.reward_fulfilment_queue``) without further
calls (a reward the platform refuses on its own, e.g. one it does not know, is queued alone); the next run
that reaches the platform drains the queue, unless staff fulfilled a reward by hand first (status
``fulfilled_manually``). Each outcome is an audit event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from cdp.audit import record_event
from cdp.paths import SQL_DIR
from cdp.sources.base import ContractError, SourceError, SourceSettings
from cdp.sources.http import HttpClient
from cdp.sources.referralhero import SOURCE, _classify
from cdp.warehouse import Actor, transaction

log = logging.getLogger(__name__)

TO_FULFIL_SQL = SQL_DIR / "referrals" / "rewards_to_fulfil.sql"


@dataclass(frozen=True)
class FulfilmentResult:
    fulfilled: int
    drained: int
    queued: int
    platform_down: bool
    last_error: str | None


def idempotency_key(reward_source_id: str) -> str:
    return f"reward-fulfilment:{reward_source_id}"


class RewardPlatform:
    """ReferralHero's reward-status update (see ``cdp_sandbox.referral_rewards`` for the endpoint's shape)."""

    def __init__(self, settings: SourceSettings) -> None:
        self.list_uuid = str(settings.extra["list_uuid"])
        self.http = HttpClient(SOURCE, settings, classify=_classify,
                               headers={"Authorization": f"Bearer {settings.credential}"})  # fmt: skip

    def mark_sent(self, subscriber_id: str, reward_id: str, key: str) -> None:
        self.http.request(
            "POST",
            f"/api/v2/lists/{self.list_uuid}/subscribers/{subscriber_id}/rewards/{reward_id}/status",
            json={"status": "sent"},
            headers={"Idempotency-Key": key},
        )


def fulfil_rewards(
    url: str,
    settings: SourceSettings,
    *,
    actor: Actor,
    run_id: str,
    now: datetime | None = None,
    platform: RewardPlatform | None = None,
) -> FulfilmentResult:
    platform = platform or RewardPlatform(settings)
    moment = now or datetime.now(UTC)
    with transaction(url, actor) as conn:
        pending = conn.execute(TO_FULFIL_SQL.read_text()).fetchall()
    fulfilled = drained = queued = 0
    down_error: str | None = None
    for reward in pending:
        key = idempotency_key(reward["source_record_id"])
        was_queued = reward["fulfilment_status"] == "queued_manual"
        if down_error is None:
            with transaction(url, actor) as conn:
                conn.execute(
                    "INSERT INTO ops.reward_fulfilment (idempotency_key, reward_id, subscriber_id, platform_reward_id,"
                    " status, attempts, requested_at, run_id) VALUES (%s, %s, %s, %s, 'requested', 1, %s, %s)"
                    " ON CONFLICT (idempotency_key) DO UPDATE SET attempts = ops.reward_fulfilment.attempts + 1,"
                    " run_id = excluded.run_id",
                    (key, reward["reward_id"], reward["subscriber_id"], reward["platform_reward_id"], moment, run_id),
                )  # fmt: skip
            refused: str | None = None
            try:
                platform.mark_sent(reward["subscriber_id"], reward["platform_reward_id"], key)
            except (
                ContractError
            ) as error:  # this reward only (e.g. unknown to the platform): people look at it
                refused = f"{type(error).__name__}: {error}"[:500]
            except SourceError as error:  # down, or refusing our credential: stop asking for this run
                down_error = f"{type(error).__name__}: {error}"[:500]
            if refused is None and down_error is None:
                via = "platform (queue drained)" if was_queued else "platform"
                with transaction(url, actor) as conn:
                    conn.execute(
                        "UPDATE ops.reward_fulfilment SET status = 'fulfilled', fulfilled_at = %s, fulfilled_by = %s,"
                        " last_error = NULL WHERE idempotency_key = %s",
                        (moment, via, key),
                    )
                    record_event(conn, "reward_fulfilment", "reward", str(reward["reward_id"]),
                                 {"idempotency_key": key, "via": via, "run_id": run_id})  # fmt: skip
                drained += was_queued
                fulfilled += not was_queued
                continue
        else:
            refused = None
        if was_queued:
            continue  # already waiting for people; nothing new to record
        reason = refused or down_error
        with transaction(url, actor) as conn:
            conn.execute(
                "INSERT INTO ops.reward_fulfilment (idempotency_key, reward_id, subscriber_id, platform_reward_id,"
                " status, attempts, requested_at, run_id) VALUES (%s, %s, %s, %s, 'queued_manual', 0, %s, %s)"
                " ON CONFLICT (idempotency_key) DO NOTHING",
                (key, reward["reward_id"], reward["subscriber_id"], reward["platform_reward_id"], moment, run_id),
            )  # fmt: skip
            conn.execute(
                "UPDATE ops.reward_fulfilment SET status = 'queued_manual', queued_at = %s, last_error = %s"
                " WHERE idempotency_key = %s",
                (moment, reason, key),
            )
            record_event(conn, "reward_fallback_queued", "reward", str(reward["reward_id"]),
                         {"idempotency_key": key, "reason": reason, "run_id": run_id})  # fmt: skip
        queued += 1
    result = FulfilmentResult(fulfilled, drained, queued, down_error is not None, down_error)
    log.info("reward fulfilment: %d fulfilled, %d drained from the manual queue, %d queued for people%s",
             fulfilled, drained, queued, " (platform down)" if down_error else "")  # fmt: skip
    return result
