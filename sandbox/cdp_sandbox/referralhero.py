"""ReferralHero in the sandbox: the referral campaign's subscribers and the REST API (with reward delivery,
``referral_rewards``).

ReferralHero (``/referralhero``) — https://support.referralhero.com/integrate/rest-api/endpoints-reference:
``/api/v2/lists/{uuid}/subscribers`` (``page``, 50 per page, ``sort``), ``/api/v2/lists/{uuid}/bonuses``;
body ``{"status": "ok", "data": {...,"pagination": {...}}, "calls_left", "timestamp"}``; bearer or
``X-API-Key``. Subscriber fields per the documented Subscriber object (tests/vendor_material/referralhero/),
plus ``unique_clicks`` and ``rewards`` (``ASSUMED_FIELDS``: our reading of the dashboard's clicks and reward
deliveries, which the documented object does not have; the connector never requires them).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from cdp.sources.base import SourceSettings
from cdp_sandbox import people
from cdp_sandbox.apis import Request, Response, VendorApis, now
from cdp_sandbox.core import WorldCore
from cdp_sandbox.formats import DAY, hex_suffix
from cdp_sandbox.referral_rewards import RewardDesk
from cdp_sandbox.tables import MALFORMED_REASONS, Table

CREDENTIAL = "rh-sandbox-api-token"
# Fields the sandbox serves beyond the documented Subscriber object (checked by tests/sources/test_vendor_material.py).
ASSUMED_FIELDS = frozenset(
    {"unique_clicks", "rewards", "phone_number", "points", "source", "device", "risk_level"}
)


def settings(world: WorldCore, base_url: str, ledger_folder: object = None) -> SourceSettings:
    extra = {"list_uuid": world.ids.referralhero_list_uuid}
    return SourceSettings(f"{base_url}/referralhero", world.credentials.for_source("referralhero"), extra)


# ---------------------------------------------------------------- data
def build(world: WorldCore) -> None:
    """The campaign's subscribers: learners, some referred by an earlier subscriber."""
    rng = world.rng(6)
    n = min(world.referral_subscribers, world.learners)
    subscriber_person = rng.permutation(world.learners)[:n].astype(np.int32)
    created = np.maximum(world.registered[subscriber_person] - rng.integers(0, 3 * DAY, n), world.start_ts)
    order = np.argsort(created, kind="stable")
    subscriber_person, created = subscriber_person[order], created[order]
    referred = (rng.random(n) < 0.35) & (np.arange(n) > 0)
    referrer = np.where(referred, (rng.random(n) * np.arange(n)).astype(np.int64), -1)
    people_referred = np.bincount(referrer[referrer >= 0], minlength=n)
    clicks = people_referred * rng.integers(1, 6, n) + rng.integers(0, 10, n)
    tags = {"rh": world.seed_tag("rh")}
    world.add_table(
        Table(
            "referralhero",
            "subscribers",
            "id",
            "last_updated_at",
            "modified",
            created,
            created.copy(),
            subscriber_person,
            world.draw_malformed(rng, n, ("missing_required", "malformed_email", "unknown_enum")),
            builder=lambda i: _subscriber(world, i),
            id_of=lambda i: f"sub_{tags['rh'][:4].lower()}{i:08x}",
            index_of=lambda rid: hex_suffix(rid, f"sub_{tags['rh'][:4].lower()}"),
            columns={"referrer": referrer, "people_referred": people_referred, "clicks": clicks},
        )
    )


def _subscriber(world: WorldCore, i: int) -> dict[str, Any]:
    table = world.tables[("referralhero", "subscribers")]
    person = int(table.person[i])
    reason = MALFORMED_REASONS[int(table.malformed[i])]
    email: str | None = world.email(person)
    if reason == "malformed_email":
        email = people.break_email(email, i)
    elif reason == "missing_required":
        email = None
    referrer = int(table.columns["referrer"][i])
    referred_by = None
    if referrer >= 0:
        referrer_person = int(table.person[referrer])
        referred_by = {
            "id": table.id_of(referrer),
            "name": world.name(referrer_person).full,
            "email": world.email(referrer_person),
            "code": f"{world.ids.referralhero_list_uuid[2:6]}{referrer:06d}",
        }
    count = int(table.columns["people_referred"][i])
    created = int(table.created[i])
    rewards = [
        {
            "id": 100 + level,
            "name": name,
            "status": "delivered",
            "created_at": created + (level + 1) * DAY,
        }
        for level, (threshold, name) in enumerate(((3, "Free certificate"), (10, "Mentor session")))
        if count >= threshold
    ]
    return {
        "id": table.id_of(i),
        "name": world.name(person).full,
        "email": email,
        "phone_number": None,
        "extra_field": "",
        "extra_field_2": "",
        "code": f"{world.ids.referralhero_list_uuid[2:6]}{i:06d}",
        "position": str(i + 1),  # documented as a string
        "referred": referrer >= 0,
        "referral_value": 0,
        "referral_category": "learner",
        "transaction_id": None,
        "referred_by": referred_by,
        "people_referred": count,
        "level_2_confirmed_referrals": 0,
        "level_3_confirmed_referrals": 0,
        "promoted": False,
        "promoted_at": None,
        "verified": True,
        "verified_at": created + 600,
        "status": "invented" if reason == "unknown_enum" else ("confirmed" if referrer >= 0 else "organic"),
        "points": count * 10,
        "unique_clicks": int(table.columns["clicks"][i]),
        "rewards": rewards,
        "created_at": created,
        "last_updated_at": int(table.modified[i]),
        "source": "direct",
        "device": "desktop",
        "risk_level": 0,
    }


# ---------------------------------------------------------------- the API
class ReferralHeroApi:
    """The API of one running sandbox; ``reward_desk`` counts the rewards it was asked to send."""

    def __init__(self, apis: VendorApis) -> None:
        self.apis = apis
        self.reward_desk = RewardDesk(apis.world)

    def __call__(self, request: Request) -> Response:
        match = re.match(r"^/api/v2/lists/(\w+)/(subscribers|bonuses)/?$", request.path)
        stream = "subscribers" if match and match.group(2) == "subscribers" else None
        reward = re.match(r"^/api/v2/lists/(\w+)/subscribers/(\w+)/rewards/(\d+)/status/?$", request.path)
        if reward:  # reward delivery (cdp_sandbox.referral_rewards)
            match, stream = reward, "reward_status"
        calls_left = max(0, 10_000 - self.apis.api_calls.get("referralhero", 0))

        def envelope(data: Any) -> dict[str, Any]:
            return {"status": "ok", "data": data, "calls_left": calls_left, "timestamp": now()}

        fault_response = self.apis.request_faults(
            "referralhero",
            stream,
            {
                "rate_limit": lambda f: Response(
                    429,
                    {"status": "error", "code": "too_many_requests", "message": "API rate limit exceeded"},
                    {"Retry-After": str(f.retry_after)},
                ),  # body assumed
                "server_error": lambda f: Response(
                    f.status, {"status": "error", "message": "Internal server error"}
                ),
                "auth_failure": lambda f: self._auth_error(),
            },
        )
        if fault_response:
            return fault_response
        token = self.apis.world.credentials.referralhero
        if (
            request.headers.get("authorization") != f"Bearer {token}"
            and request.headers.get("x-api-key") != token
            and request.arg("api_token") != token
        ):
            return self._auth_error()
        if not match or match.group(1) != self.apis.world.ids.referralhero_list_uuid:
            return Response(404, {"status": "error", "code": "list_not_found", "message": "List not found"})
        if reward:
            if request.method != "POST":
                return Response(405, {"status": "error", "code": "method_not_allowed", "message": "Use POST"})
            status, body = self.reward_desk.update_status(
                reward.group(2), int(reward.group(3)), request.body, request.headers.get("idempotency-key")
            )
            return Response(status, envelope(body) if status == 200 else body)
        if match.group(2) == "bonuses":
            return Response(
                200,
                envelope(
                    [
                        {
                            "id": 100,
                            "name": "Free certificate",
                            "referrals_required": 3,
                            "reward_type": "custom",
                        },
                        {
                            "id": 101,
                            "name": "Mentor session",
                            "referrals_required": 10,
                            "reward_type": "custom",
                        },
                    ]
                ),
            )
        listing = self.apis.listing("referralhero", "subscribers")
        per_page = 50
        try:
            page = max(1, int(request.arg("page", "1")))
        except ValueError:
            page = 1
        descending = (request.arg("sort") or "registration_desc") == "registration_desc"
        with self.apis.lock:
            rows = listing.table.window(None, None, "created")  # registration order, whatever changed since
            if listing.excluded:
                rows = rows[~np.isin(rows, np.fromiter(listing.excluded, dtype=np.int64))]
        if descending:
            rows = rows[::-1]
        skip = listing.faults.take("referralhero", "subscribers", ("drop_page",))
        start = (page - 1 + (1 if skip and page > 1 else 0)) * per_page
        total = int(rows.shape[0])
        return Response(
            200,
            envelope(
                {
                    "response": "subscribers_retrieved",
                    "subscribers": listing.encoded(rows[start : start + per_page].tolist()),
                    "pagination": {
                        "total_pages": max(1, math.ceil(total / per_page)),
                        "current_page": page,
                        "per_page": per_page,
                        "total_objects": total,
                    },
                }
            ),
        )

    @staticmethod
    def _auth_error() -> Response:
        return Response(
            401, {"status": "error", "code": "unauthorized", "message": "Invalid API token"}
        )  # assumed
