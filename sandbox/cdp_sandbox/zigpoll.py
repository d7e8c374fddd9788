"""Zigpoll in the sandbox: participants (with their consent) and responses, and the cursor-paged API.

Zigpoll (``/zigpoll``) — https://apidocs.zigpoll.com/reference/cursor-pagination: ``/responses`` with
``accountId``, ``pollId``, ``limit``, ``startCursor``, ``createdAfter`` (milliseconds); body
``{"data", "hasNextPage", "endCursor"}``, newest first; ``Authorization: <api key>``. Consent metadata
lives apart from responses, on ``/participants`` (same paging); that endpoint's email, metadata and
consent are our old model of Zigpoll's participant records, not its spec (``ASSUMED_FIELDS``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from cdp.sources.base import SourceSettings
from cdp_sandbox import people
from cdp_sandbox.apis import Request, Response, VendorApis, decode_cursor, encode_cursor
from cdp_sandbox.core import WorldCore
from cdp_sandbox.formats import iso_z, mongo_id
from cdp_sandbox.names import COURSE_TOPICS
from cdp_sandbox.tables import MALFORMED_REASONS

CREDENTIAL = "zigpoll-sandbox-api-key"
# Fields the sandbox serves beyond the OpenAPI's schemas (tests/vendor_material/zigpoll/), per stream. The
# participants' email, metadata and consent are our old model of Zigpoll and not in its spec (issue 17).
ASSUMED_FIELDS = {
    "responses": frozenset({"slideTitle", "slideType"}),
    "participants": frozenset({"accountId", "email", "metadata", "consent"}),
}


def settings(world: WorldCore, base_url: str, ledger_folder: object = None) -> SourceSettings:
    extra = {"account_id": world.ids.zigpoll_account_id, "poll_id": world.ids.zigpoll_poll_id}
    return SourceSettings(f"{base_url}/zigpoll", world.credentials.for_source("zigpoll"), extra)


def api(apis: VendorApis) -> Callable[[Request], Response]:
    return functools.partial(handle, apis)


# ---------------------------------------------------------------- data (drawn by ``surveys.build``)
def participant(world: WorldCore, i: int) -> dict[str, Any]:
    table = world.tables[("zigpoll", "participants")]
    person = int(table.person[i])
    reason = MALFORMED_REASONS[int(table.malformed[i])]
    email = world.email(person)
    if reason == "malformed_email":
        email = people.break_email(email, i)
    created = iso_z(int(table.created[i]))
    return {
        "_id": mongo_id(world.seed_tag("zig_part"), i),
        "createdAt": created,
        "accountId": world.ids.zigpoll_account_id,
        "email": email,
        "metadata": {"moodle_user_id": str(int(world.moodle_user_row_of_person[person]) + 3)},
        "consent": {
            "status": "perhaps"
            if reason == "unknown_enum"
            else ("granted" if table.columns["consent_research"][i] else "declined"),
            "purposes": ["research", "follow_up"] if table.columns["consent_research"][i] else [],
            "collectedAt": created,
            "method": "consent_slide",
            "policyVersion": "2024-01",
        },
    }


def response(world: WorldCore, i: int) -> dict[str, Any]:
    table = world.tables[("zigpoll", "responses")]
    person = int(table.person[i])
    participant = int(table.columns["participant"][i])
    reason = MALFORMED_REASONS[int(table.malformed[i])]
    metadata: dict[str, Any] = {"course": COURSE_TOPICS[int(world.salt[person]) % len(COURSE_TOPICS)]}
    if table.columns["has_age"][i]:
        metadata["age"] = int(world.age_years(np.array([person]), int(table.created[i]))[0])
    score = int(table.columns["score"][i])
    return {
        "_id": mongo_id(world.seed_tag("zig_resp"), i),
        "createdAt": iso_z(int(table.created[i])),
        "accountId": world.ids.zigpoll_account_id,
        "pollId": world.ids.zigpoll_poll_id,
        "slideId": "64a1f0c2e4b0a1b2c3d4e600",
        "participantId": None
        if reason == "missing_required"
        else mongo_id(world.seed_tag("zig_part"), participant),
        "orderValue": score,
        "response": f"{score} - {('Poor', 'Fair', 'Good', 'Great', 'Excellent')[score - 1]}",
        "slideTitle": "How much did this course improve your skills?",
        "slideType": "rating",
        "metadata": metadata,
    }


# ---------------------------------------------------------------- the API
def handle(apis: VendorApis, request: Request) -> Response:
    stream = request.path.strip("/")
    fault_response = apis.request_faults(
        "zigpoll",
        stream,
        {
            "rate_limit": lambda f: Response(
                429, {"error": "Too Many Requests"}, {"Retry-After": str(f.retry_after)}
            ),  # body assumed
            "server_error": lambda f: Response(f.status, {"error": "Internal Server Error"}),
            "auth_failure": lambda f: Response(401, {"error": "Unauthorized", "message": "Invalid API key"}),
        },
    )
    if fault_response:
        return fault_response
    if request.headers.get("authorization") != apis.world.credentials.zigpoll:
        return Response(401, {"error": "Unauthorized", "message": "Invalid API key"})  # assumed
    if stream == "poll":  # what `cdp sources check` reads to see the configured poll exists
        if request.arg("pollId") != apis.world.ids.zigpoll_poll_id:
            return Response(404, {"error": "Not Found", "message": "No such poll"})  # assumed
        return Response(200, {"_id": apis.world.ids.zigpoll_poll_id, "accountId": apis.world.ids.zigpoll_account_id,
                              "title": "Course pulse"})  # fmt: skip
    if stream not in ("responses", "participants", "emails", "account"):
        return Response(404, {"error": "Not Found"})
    if request.arg("accountId") != apis.world.ids.zigpoll_account_id:
        return Response(403, {"error": "Forbidden", "message": "No access to this account"})
    if stream == "account":
        return Response(
            200, {"_id": apis.world.ids.zigpoll_account_id, "name": "Sandbox nonprofit"}
        )  # assumed
    if stream == "emails":
        return _emails(apis, request)
    if stream == "responses" and request.arg("pollId") not in (None, apis.world.ids.zigpoll_poll_id):
        return Response(200, {"data": [], "hasNextPage": False, "endCursor": None})
    listing = apis.listing("zigpoll", stream)
    limit = max(1, min(int(request.arg("limit", "100")), 100))
    cursor = request.arg("startCursor")
    after = None
    if cursor:
        try:
            time_part, index = decode_cursor(cursor)
        except ValueError:
            return Response(400, {"error": "Bad Request", "message": "invalid startCursor"})
        after = (time_part, index)
    since = None
    if stream == "responses" and request.arg("createdAfter"):
        try:  # a JS timestamp (milliseconds); "after" is strict, and our times are whole seconds
            since = int(request.arg("createdAfter")) // 1000 + 1
        except ValueError:
            return Response(400, {"error": "Bad Request", "message": "invalid createdAfter"})  # assumed
    rows, more = listing.page(since, None, limit, after=after, descending=True)
    end_cursor = encode_cursor(*listing.key(rows[-1])) if rows else None
    return Response(200, {"data": listing.encoded(rows), "hasNextPage": more, "endCursor": end_cursor})


def _emails(apis: VendorApis, request: Request) -> Response:
    """``GET /emails`` (the kept OpenAPI's Email objects): the emails the account's email slide collected,
    one per participant, newest first."""
    listing = apis.listing("zigpoll", "participants")
    limit = max(1, min(int(request.arg("limit", "50")), 1000))
    rows, more = listing.page(None, None, limit, descending=True)
    data = [
        {"_id": f"e{p['_id'][1:]}", "createdAt": p["createdAt"], "email": p["email"],
         "pollId": apis.world.ids.zigpoll_poll_id, "accountId": p["accountId"], "participantId": p["_id"]}
        for p in (listing.table.builder(row) for row in rows)
    ]  # fmt: skip
    end_cursor = encode_cursor(*listing.key(rows[-1])) if rows else None
    return Response(200, {"data": data, "hasNextPage": more, "endCursor": end_cursor})
