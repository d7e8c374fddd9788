"""Typeform in the sandbox: the course survey's responses and the Responses API.

Typeform (``/typeform``) — https://www.typeform.com/developers/responses/reference/retrieve-responses/:
``/forms/{form_id}/responses`` with ``page_size`` (max 1000), ``since``/``until`` (inclusive), ``after``/
``before`` tokens, ``sort``; body ``{"total_items", "page_count", "items"}``.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from cdp.sources.base import SourceSettings
from cdp_sandbox import people
from cdp_sandbox.apis import Request, Response, VendorApis, parse_time
from cdp_sandbox.core import WorldCore
from cdp_sandbox.formats import iso_z, typeform_token
from cdp_sandbox.tables import MALFORMED_REASONS

CREDENTIAL = "tfp_sandbox_personal_access_token"


def settings(world: WorldCore, base_url: str, ledger_folder: object = None) -> SourceSettings:
    extra = {"form_id": world.ids.typeform_form_id}
    return SourceSettings(f"{base_url}/typeform", world.credentials.for_source("typeform"), extra)


def api(apis: VendorApis) -> Callable[[Request], Response]:
    return functools.partial(handle, apis)


# ---------------------------------------------------------------- data (drawn by ``surveys.build``)
def response(world: WorldCore, i: int) -> dict[str, Any]:
    table = world.tables[("typeform", "responses")]
    person = int(table.person[i])
    reason = MALFORMED_REASONS[int(table.malformed[i])]
    token = typeform_token(world.seed_tag("tf"), i)
    submitted = int(table.created[i])
    email = world.email(person)
    if reason == "malformed_email":
        email = people.break_email(email, i)
    answers: list[dict[str, Any]] = [
        {
            "field": {"id": "Q1rating", "type": "opinion_scale", "ref": "skills_improved"},
            "type": "number",
            "number": int(table.columns["score"][i]),
        },
        {"field": {"id": "Q2email", "type": "email", "ref": "email"}, "type": "email", "email": email},
        {
            "field": {"id": "Q3consent", "type": "yes_no", "ref": "may_contact"},
            "type": "boolean",
            "boolean": bool(table.columns["consent"][i]),
        },
    ]
    if table.columns["has_age"][i]:
        answers.append(
            {
                "field": {"id": "Q4age", "type": "number", "ref": "age"},
                "type": "number",
                "number": int(world.age_years(np.array([person]), submitted)[0]),
            }
        )
    moodle_row = int(world.moodle_user_row_of_person[person])
    return {
        "landing_id": token,
        "token": token,
        "response_id": token,
        "landed_at": iso_z(submitted - 40 - int(world.salt[person]) % 600),
        "submitted_at": iso_z(submitted),
        "metadata": {
            "user_agent": "Mozilla/5.0",
            "platform": "other",
            "referer": f"https://example.typeform.com/to/{world.ids.typeform_form_id}",
            "network_id": token[:10],
            "browser": "default",
        },
        "hidden": {"learner_id": "" if reason == "missing_required" else str(moodle_row + 3)},
        "calculated": {"score": 0},
        "answers": answers,
    }


# ---------------------------------------------------------------- the API
def handle(apis: VendorApis, request: Request) -> Response:
    match = re.match(r"^/forms/([\w-]+)/responses/?$", request.path)
    fault_response = apis.request_faults(
        "typeform",
        "responses" if match else None,
        {
            "rate_limit": lambda f: Response(
                429,
                {"code": "RATE_LIMITED", "description": "Too many requests"},
                {"Retry-After": str(f.retry_after)},
            ),  # body assumed
            "server_error": lambda f: Response(
                f.status, {"code": "INTERNAL_ERROR", "description": "Internal server error"}
            ),
            "auth_failure": lambda f: _auth_error(),
        },
    )
    if fault_response:
        return fault_response
    if request.headers.get("authorization") != f"Bearer {apis.world.credentials.typeform}":
        return _auth_error()
    definition = re.match(r"^/forms/([\w-]+)/?$", request.path)
    if definition:
        return _form_definition(apis, definition.group(1))
    if not match:
        return Response(404, {"code": "NOT_FOUND", "description": "Endpoint not found"})
    if match.group(1) != apis.world.ids.typeform_form_id:
        return Response(
            404, {"code": "FORM_NOT_FOUND", "description": f"Non existing form with uid {match.group(1)}"}
        )
    listing = apis.listing("typeform", "responses")
    try:
        page_size = int(request.arg("page_size", "25"))
        since = parse_time(request.arg("since"))
        until = parse_time(request.arg("until"))
    except ValueError as error:
        return Response(400, {"code": "VALIDATION_ERROR", "description": str(error)})
    if not 1 <= page_size <= 1000:
        return Response(
            400, {"code": "VALIDATION_ERROR", "description": "page_size must be between 1 and 1000"}
        )
    until_exclusive = None if until is None else until + 1
    after_token, before_token = request.arg("after"), request.arg("before")
    descending = (request.arg("sort") or "submitted_at,desc").endswith("desc")
    after = None
    token = after_token or before_token
    if after_token:
        descending = False
    elif before_token:
        descending = True
    if token:
        index = listing.table.index_of(token)
        if index is None or not 0 <= index < len(listing.table):
            return Response(400, {"code": "VALIDATION_ERROR", "description": "invalid token"})
        after = listing.key(index)
    rows, _ = listing.page(since, until_exclusive, page_size, after=after, descending=descending)
    total = listing.count(since, until_exclusive)
    return Response(
        200,
        {
            "total_items": total,
            "page_count": math.ceil(total / page_size),
            "items": listing.encoded(rows),
        },
    )


def _form_definition(apis: VendorApis, form_id: str) -> Response:
    """``GET /forms/{form_id}`` (Create API): the form's hidden fields and questions with their refs, as the
    responses above use them; what ``cdp sources check`` reads to see the organisation's form is set up."""
    if form_id != apis.world.ids.typeform_form_id:
        return Response(
            404, {"code": "FORM_NOT_FOUND", "description": f"Non existing form with uid {form_id}"}
        )
    questions = (("Q1rating", "opinion_scale", "skills_improved", "How much did the course improve your skills?"),
                 ("Q2email", "email", "email", "Your email"),
                 ("Q3consent", "yes_no", "may_contact", "May we contact you about future courses?"),
                 ("Q4age", "number", "age", "How old are you?"))  # fmt: skip
    return Response(
        200,
        {
            "id": form_id,
            "title": "Course feedback",
            "hidden": ["learner_id"],
            "fields": [{"id": i, "type": t, "ref": ref, "title": title} for i, t, ref, title in questions],
            "_links": {"display": f"https://example.typeform.com/to/{form_id}"},
        },
    )


def _auth_error() -> Response:
    return Response(
        401,
        {
            "code": "AUTHENTICATION_FAILED",
            "description": "Authentication credentials not found on the Request Headers",
        },
    )
