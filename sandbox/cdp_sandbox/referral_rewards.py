"""ReferralHero's reward delivery as the sandbox serves it: the platform side of reward fulfilment.

With the campaign's Reward Delivery set to "Hold", an unlocked reward waits as *Pending* until someone marks
it *Sent* (https://support.referralhero.com/campaign-builder/rewards/reward-status). The pipeline does that
through ``POST /api/v2/lists/{uuid}/subscribers/{id}/rewards/{reward_id}/status`` with ``{"status": "sent"}``
(path and body assumed: the reward-status update is documented in the dashboard, not in the REST reference).
An ``Idempotency-Key`` header makes a repeated request answer as the first did without sending the reward
again; without one, every request sends it again (so a client that forgets the key is caught by the count).

``sent`` counts, per (subscriber id, reward id), how many times the platform delivered the reward: what
"exactly once" is checked against. Faults for this endpoint use the stream name ``reward_status``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import orjson

from cdp_sandbox.core import WorldCore

STREAM = "reward_status"
REWARD_THRESHOLDS = {100: 3, 101: 10}  # bonus id -> referrals required (as /bonuses serves them)


class RewardDesk:
    def __init__(self, world: WorldCore) -> None:
        self.world = world
        self.lock = threading.Lock()
        self.sent: Counter[tuple[str, int]] = Counter()
        self._answers: dict[str, dict[str, Any]] = {}

    def earned(self, subscriber_id: str, reward_id: int) -> bool:
        table = self.world.table("referralhero", "subscribers")
        index = table.index_of(subscriber_id)
        if index is None or not 0 <= index < len(table) or reward_id not in REWARD_THRESHOLDS:
            return False
        return int(table.columns["people_referred"][index]) >= REWARD_THRESHOLDS[reward_id]

    def update_status(
        self, subscriber_id: str, reward_id: int, body: bytes, idempotency_key: str | None
    ) -> tuple[int, dict[str, Any]]:
        try:
            status = orjson.loads(body or b"{}").get("status")
        except orjson.JSONDecodeError:
            status = None
        if status != "sent":
            return 422, {"status": "error", "code": "invalid_status", "message": "status must be 'sent'"}
        if not self.earned(subscriber_id, reward_id):
            return 404, {"status": "error", "code": "reward_not_found", "message": "Reward not found"}
        with self.lock:
            if idempotency_key and idempotency_key in self._answers:
                return 200, self._answers[idempotency_key]
            self.sent[subscriber_id, reward_id] += 1
            answer = {"reward": {"id": reward_id, "subscriber_id": subscriber_id, "status": "sent",
                                 "sent_at": int(time.time())}}  # fmt: skip
            if idempotency_key:
                self._answers[idempotency_key] = answer
        return 200, answer
