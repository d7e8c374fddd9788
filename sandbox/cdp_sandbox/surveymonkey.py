"""SurveyMonkey in the sandbox: the address book's contacts (consent in a custom field), one survey's
responses from an email collector and a web link, and the API v3 that serves them.

SurveyMonkey (``/surveymonkey/v3``) — SurveyMonkey's API v3 reference (SurveyMonkey/public_api_docs; the
examples kept in tests/vendor_material/surveymonkey/): list answers ``{"data", "per_page", "page", "total",
"links": {"self", "next"}}`` with ``page``/``per_page``; ``/surveys/{id}/responses/bulk`` (``per_page`` at
most 100, ``start_modified_at``/``end_modified_at``, ``sort_order``), ``/surveys/{id}/details``,
``/surveys/{id}``, ``/contacts`` and ``/contacts/bulk`` (``status`` active by default, or optout),
``/contact_fields``, ``/collectors/{id}/recipients``, ``/users/me``; errors ``{"error": {"id", "name",
"message", "docs", "http_status_code"}}``; auth ``Authorization: bearer <token>``. Consent metadata is kept
apart from the results: on the contact (custom field 4, "Survey consent"), never on the response.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import numpy as np

from cdp.sources.base import SourceSettings
from cdp_sandbox import people
from cdp_sandbox.apis import Request, Response, VendorApis, parse_time
from cdp_sandbox.core import WorldCore
from cdp_sandbox.formats import iso_z
from cdp_sandbox.tables import MALFORMED_REASONS, Table

CREDENTIAL = "sm_sandbox_private_app_access_token"
SURVEY_ID = "318472960"
PAGE_ID = "41872215"
RATING_QUESTION, COMMENT_QUESTION = "152336081", "152336082"
RATING_CHOICES = tuple(str(1_090_000_001 + i) for i in range(5))
EMAIL_COLLECTOR, WEBLINK_COLLECTOR = "405981722", "405981723"
CONTACT_BASE, RECIPIENT_BASE, RESPONSE_BASE = 3_100_000_000, 4_200_000_000, 5_007_000_000
CONSENT_FIELD = "4"
CONTACT_FIELDS = ("Title", "Organisation", "City", "Survey consent", "Country", "Preferred language")
CONSENT_TEXT = ("", "Yes", "No")  # empty, given, refused
SCOPES = ("users_read", "surveys_read", "collectors_read", "contacts_read", "responses_read",
          "responses_read_detail")  # fmt: skip
DOCS = "https://developer.surveymonkey.com/api/v3/#error-codes"


def settings(world: WorldCore, base_url: str, ledger_folder: object = None) -> SourceSettings:
    extra = {"survey_id": SURVEY_ID, "consent_field": CONTACT_FIELDS[int(CONSENT_FIELD) - 1]}
    return SourceSettings(f"{base_url}/surveymonkey/v3", world.credentials.for_source("surveymonkey"), extra)


def api(apis: VendorApis) -> Callable[[Request], Response]:
    return functools.partial(handle, apis)


def _suffix(record_id: Any, base: int) -> int | None:
    try:
        index = int(str(record_id)) - base
    except ValueError:
        return None
    return index if index >= 0 else None


# ---------------------------------------------------------------- data
def build(world: WorldCore) -> None:
    """Contacts (learners with an address of their own: SurveyMonkey holds one contact per address), then
    the survey's responses, most from contacts invited by email, some from the web link."""
    rng = world.rng(30)
    candidates = np.nonzero(~world.shares_family_email[: world.learners])[0]
    n_contacts = min(max(1, world.learners // 5), candidates.shape[0])
    contact_person = rng.permutation(candidates)[:n_contacts].astype(np.int32)
    contact_created = world.draw_after(rng, world.registered[contact_person], skew=3.0)
    order = np.argsort(contact_created, kind="stable")
    contact_person, contact_created = contact_person[order], contact_created[order]
    consent = rng.choice(3, n_contacts, p=[0.1, 0.65, 0.25]).astype(np.int8)
    world.add_table(
        Table(
            "surveymonkey", "contacts", "id", None, "created",
            contact_created, contact_created.copy(), contact_person,
            world.draw_malformed(rng, n_contacts, ("malformed_email", "unknown_enum")),
            builder=lambda i: contact(world, i),
            id_of=lambda i: str(CONTACT_BASE + i),
            index_of=lambda rid: _suffix(rid, CONTACT_BASE),
            columns={"consent": consent, "optout": rng.random(n_contacts) < 0.05},
        )
    )  # fmt: skip

    n_responses = max(1, world.learners // 4) if n_contacts else 0
    respondent = rng.integers(0, max(n_contacts, 1), n_responses)
    by_email = rng.random(n_responses) < 0.9
    respondent = np.where(by_email, respondent, -1)
    started = world.draw_after(
        rng, np.where(by_email, contact_created[np.maximum(respondent, 0)], world.start_ts), skew=2.0
    )
    modified = world.draw_edits(rng, started)
    order = np.argsort(modified, kind="stable")
    respondent, started, modified = respondent[order], started[order], modified[order]
    world.add_table(
        Table(
            "surveymonkey", "responses", "id", "date_modified", "modified",
            started, modified, np.where(respondent >= 0, contact_person[np.maximum(respondent, 0)], -1),
            world.draw_malformed(rng, n_responses, ("unknown_enum",)),
            builder=lambda i: response(world, i),
            id_of=lambda i: str(RESPONSE_BASE + i),
            index_of=lambda rid: _suffix(rid, RESPONSE_BASE),
            columns={
                "respondent": respondent,
                "rating": rng.integers(0, 5, n_responses),
                "commented": rng.random(n_responses) < 0.4,
                "seconds": rng.integers(20, 900, n_responses),
            },
        )
    )  # fmt: skip


def contact(world: WorldCore, i: int) -> dict[str, Any]:
    table = world.tables[("surveymonkey", "contacts")]
    person = int(table.person[i])
    reason = MALFORMED_REASONS[int(table.malformed[i])]
    parts = world.name(person)
    email = world.email(person)
    if reason == "malformed_email":
        email = people.break_email(email, i)
    answer = "Maybe later" if reason == "unknown_enum" else CONSENT_TEXT[int(table.columns["consent"][i])]
    values = ("", "", "", answer, world.country_code(person), "")
    contact_id = str(CONTACT_BASE + i)
    return {
        "id": contact_id,
        "first_name": parts.given,
        "last_name": parts.family,
        "email": email,
        "phone_number": None,
        "custom_fields": {str(n + 1): value for n, value in enumerate(values)},
        "href": f"https://api.surveymonkey.com/v3/contacts/{contact_id}",
    }


def recipient(world: WorldCore, i: int) -> dict[str, Any]:
    """The email collector's recipient for contact ``i`` (every contact was invited)."""
    record = contact(world, i)
    recipient_id = str(RECIPIENT_BASE + i)
    return {
        "id": recipient_id,
        "email": record["email"],
        "phone_number": None,
        "href": f"https://api.surveymonkey.com/v3/collectors/{EMAIL_COLLECTOR}/recipients/{recipient_id}",
    }


def response(world: WorldCore, i: int) -> dict[str, Any]:
    table = world.tables[("surveymonkey", "responses")]
    respondent = int(table.columns["respondent"][i])
    reason = MALFORMED_REASONS[int(table.malformed[i])]
    response_id = str(RESPONSE_BASE + i)
    questions: list[dict[str, Any]] = [
        {"id": RATING_QUESTION, "answers": [{"choice_id": RATING_CHOICES[int(table.columns["rating"][i])]}]}
    ]
    if table.columns["commented"][i]:
        questions.append({"id": COMMENT_QUESTION, "answers": [{"text": "The exercises helped most."}]})
    return {
        "total_time": int(table.columns["seconds"][i]),
        "collection_mode": "default",
        "href": f"https://api.surveymonkey.com/v3/responses/{response_id}",
        "custom_variables": {},
        "custom_value": "",
        "edit_url": f"https://www.surveymonkey.com/r/?sm={response_id}",
        "analyze_url": f"https://www.surveymonkey.com/analyze/browse/?respondent_id={response_id}",
        "ip_address": "",
        "pages": [{"id": PAGE_ID, "questions": questions}],
        "date_modified": iso_z(int(table.modified[i])).replace("Z", "+00:00"),
        "response_status": "abandoned" if reason == "unknown_enum" else "completed",
        "id": response_id,
        "collector_id": EMAIL_COLLECTOR if respondent >= 0 else WEBLINK_COLLECTOR,
        "recipient_id": str(RECIPIENT_BASE + respondent) if respondent >= 0 else "0",
        "date_created": iso_z(int(table.created[i])).replace("Z", "+00:00"),
        "survey_id": SURVEY_ID,
    }


def survey_details() -> dict[str, Any]:
    rating = ("Not at all", "A little", "Somewhat", "Much", "Very much")
    return {
        **survey(),
        "pages": [
            {
                "id": PAGE_ID,
                "questions": [
                    {
                        "id": RATING_QUESTION,
                        "headings": [{"heading": "How much did this course improve your skills?"}],
                        "position": 1,
                        "family": "single_choice",
                        "subtype": "vertical",
                        "answers": {
                            "choices": [
                                {"id": c, "text": t} for c, t in zip(RATING_CHOICES, rating, strict=True)
                            ]
                        },
                    },
                    {
                        "id": COMMENT_QUESTION,
                        "headings": [{"heading": "What helped you most?"}],
                        "position": 2,
                        "family": "open_ended",
                        "subtype": "essay",
                    },
                ],
            }
        ],
    }


def survey() -> dict[str, Any]:
    return {
        "title": "Course feedback",
        "nickname": "",
        "custom_variables": {},
        "language": "en",
        "question_count": 2,
        "page_count": 1,
        "date_created": "2023-01-02T09:00:00+00:00",
        "date_modified": "2023-01-02T09:00:00+00:00",
        "id": SURVEY_ID,
        "folder_id": "0",
        "href": f"https://api.surveymonkey.com/v3/surveys/{SURVEY_ID}",
        "buttons_text": {
            "done_button": "Done",
            "prev_button": "Prev",
            "exit_button": "Exit",
            "next_button": "Next",
        },
        "footer": True,
        "preview": "https://www.surveymonkey.com/r/Preview/",
        "edit_url": "https://www.surveymonkey.com/create/",
        "collect_url": "https://www.surveymonkey.com/collect/list",
        "analyze_url": "https://www.surveymonkey.com/analyze/",
        "summary_url": "https://www.surveymonkey.com/summary/",
    }


# ---------------------------------------------------------------- the API
def _error(
    status: int, error_id: str, name: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    body = {
        "error": {"docs": DOCS, "message": message, "id": error_id, "name": name, "http_status_code": status}
    }
    return Response(status, body, headers or {})


def _auth_error() -> Response:
    return _error(401, "1011", "Authorization Error", "The authorization token provided was invalid.")


def _stream_of(path: str) -> str | None:
    if re.match(r"^/v3/surveys/\w+/responses/bulk/?$", path):
        return "responses"
    if re.match(r"^/v3/(contacts|contacts/bulk)/?$", path):
        return "contacts"
    return None


def handle(apis: VendorApis, request: Request) -> Response:
    path = request.path.rstrip("/") or "/"
    fault_response = apis.request_faults(
        "surveymonkey",
        _stream_of(path),
        {
            "rate_limit": lambda f: _error(
                429,
                "1040",
                "Rate Limit Reached",
                "Too many requests were made, try again later.",
                {
                    "Retry-After": str(f.retry_after),
                    "X-Ratelimit-App-Global-Minute-Remaining": "0",
                    "X-Ratelimit-App-Global-Minute-Reset": str(f.retry_after),
                },
            ),  # fmt: skip
            "server_error": lambda f: _error(
                f.status, "1050", "Internal Server Error", "Oh bananas! We couldn't process your request."
            ),
            "auth_failure": lambda f: _auth_error(),
        },
    )
    if fault_response:
        return fault_response
    token = request.headers.get("authorization", "")
    if token.lower() != f"bearer {apis.world.credentials.surveymonkey}".lower() or not token[7:]:
        return _auth_error()
    world = apis.world
    if path == "/v3/users/me":
        return Response(200, _me())
    if path == f"/v3/surveys/{SURVEY_ID}":
        return Response(200, survey())
    if path == f"/v3/surveys/{SURVEY_ID}/details":
        return Response(200, survey_details())
    if path == "/v3/contact_fields":
        fields = [{"href": f"https://api.surveymonkey.com/v3/contact_fields/{n + 1}", "id": str(n + 1),
                   "label": label} for n, label in enumerate(CONTACT_FIELDS)]  # fmt: skip
        return _listing(request, fields, lambda row: row)
    try:
        if path == f"/v3/surveys/{SURVEY_ID}/responses/bulk":
            return _responses(apis, request)
        if path == f"/v3/surveys/{SURVEY_ID}/responses":
            return _response_ids(apis, request)
        if path in ("/v3/contacts", "/v3/contacts/bulk"):
            table = world.table("surveymonkey", "contacts")
            status = request.arg("status", "active")
            if status not in ("active", "optout", "bounced"):
                return _error(400, "1003", "Bad Request", "Invalid URL parameters.")
            excluded = apis.listing("surveymonkey", "contacts").excluded
            rows = [
                int(i) for i in table.visible_rows()
                if int(i) not in excluded and status == ("optout" if table.columns["optout"][i] else "active")
            ]  # fmt: skip
            if path == "/v3/contacts":
                brief = ("id", "first_name", "last_name", "email", "phone_number", "href")
                return _listing(request, rows, lambda i: {k: contact(world, i)[k] for k in brief})
            return _listing(request, rows, lambda i: contact(world, i))
        match = re.match(r"^/v3/collectors/(\w+)/recipients$", path)
        if match:
            if match.group(1) == WEBLINK_COLLECTOR:
                return _listing(request, [], lambda i: i)
            if match.group(1) != EMAIL_COLLECTOR:
                return _not_found()
            table = world.table("surveymonkey", "contacts")
            return _listing(request, [int(i) for i in table.visible_rows()], lambda i: recipient(world, i))
    except ValueError:
        return _error(400, "1003", "Bad Request", "Invalid URL parameters.")
    return _not_found()


def _not_found() -> Response:
    return _error(404, "1020", "Resource Not Found", "There was an error retrieving the requested resource.")


def _responses(apis: VendorApis, request: Request) -> Response:
    per_page = int(request.arg("per_page", "50"))
    if not 1 <= per_page <= 100:
        return _error(400, "1003", "Bad Request", "Invalid URL parameters.")
    since = _sm_time(request.arg("start_modified_at"))
    until = _sm_time(request.arg("end_modified_at"))
    listing = apis.listing("surveymonkey", "responses")
    rows = [int(i) for i in listing.table.window(since, until) if int(i) not in listing.excluded]
    if (request.arg("sort_order") or "DESC").upper() == "DESC":
        rows.reverse()
    return _listing(request, rows, lambda i: listing.table.record(i), per_page_default=50, per_page=per_page)


def _response_ids(apis: VendorApis, request: Request) -> Response:
    """``GET /surveys/{id}/responses``: every response's id and href (1000 a page at most). A response deleted
    in the tool (the ``delete_records`` fault) is no longer listed; one the API lost on the way
    (``drop_records``) still is: the list is the survey's, not the bulk export's."""
    listing = apis.listing("surveymonkey", "responses")
    table = listing.table
    rows = [int(i) for i in table.window(None, None) if int(i) not in listing.deleted]

    def brief(i: int) -> dict[str, Any]:
        response_id = str(RESPONSE_BASE + i)
        return {"href": f"https://api.surveymonkey.com/v3/surveys/{SURVEY_ID}/responses/{response_id}",
                "id": response_id}  # fmt: skip

    return _listing(request, rows, brief)


def _sm_time(text: str | None) -> int | None:
    """A SurveyMonkey date string; without an offset it is UTC."""
    if text and not re.search(r"([+-]\d\d:?\d\d|Z)$", text):
        text += "+00:00"
    return parse_time(text)


def _listing(
    request: Request,
    rows: list[Any],
    render: Callable[[Any], dict[str, Any]],
    *,
    per_page_default: int = 50,
    per_page: int | None = None,
) -> Response:
    """One page of a list resource, with SurveyMonkey's pagination fields and absolute links."""
    per_page = per_page or max(1, min(int(request.arg("per_page", str(per_page_default))), 1000))
    page = max(1, int(request.arg("page", "1")))
    total = len(rows)
    chosen = rows[(page - 1) * per_page : page * per_page]
    base = f"http://{request.headers.get('host', 'sandbox')}/surveymonkey{request.path}"
    query = {k: v[0] for k, v in request.query.items() if k not in ("page", "per_page")}

    def link(number: int) -> str:
        return f"{base}?{urlencode({**query, 'page': number, 'per_page': per_page})}"

    links = {"self": link(page)}
    last = max(1, math.ceil(total / per_page))
    if page < last:
        links["next"] = link(page + 1)
        links["last"] = link(last)
    if page > 1:
        links["prev"] = link(page - 1)
        links["first"] = link(1)
    return Response(
        200,
        {
            "per_page": per_page,
            "total": total,
            "data": [render(i) for i in chosen],
            "page": page,
            "links": links,
        },
    )


def _me() -> dict[str, Any]:
    return {
        "username": "cdp-sandbox",
        "scopes": {"available": list(SCOPES), "granted": list(SCOPES)},
        "first_name": "Sandbox",
        "last_name": "Admin",
        "account_type": "enterprise_platinum",
        "language": "en",
        "email": "surveys@example.org",
        "email_verified": True,
        "href": "https://api.surveymonkey.com/v3/users/me",
        "date_last_login": "2024-01-01T00:00:00.000000+00:00",
        "date_created": "2023-01-01T00:00:00+00:00",
        "id": "90817265",
    }
