"""SurveyMonkey in the sandbox: the address book's contacts (consent in a custom field), one survey's
responses from an email collector and a web link, and the API v3 that serves them.

SurveyMonkey (``/surveymonkey/v3``) — SurveyMonkey's API v3 reference (SurveyMonkey/public_api_docs; the
examples kept in tests/vendor_material/surveymonkey/): list answers ``{"data", "per_page", "page", "total",
"links": {"self", "next"}}`` with ``page``/``per_page``; ``/surveys/{id}/responses/bulk`` (``per_page`` at
most 100, ``start_modified_at``/``end_modified_at``, ``sort_order``), ``/surveys/{id}/details``,
``/surveys/{id}``, ``/contacts`` and ``/contacts/bulk`` (``status`` active by default, or optout),
``/contact_fields``, ``/collectors/{id}/recipients``, ``/users/me``; and the writes of inviting a list
(``Invitations``: ``POST /contact_lists``, ``/contact_lists/{id}/contacts/bulk``, ``/surveys/{id}/collectors``,
``/collectors/{id}/messages``, ``/collectors/{id}/messages/{id}/recipients/bulk`` and ``/send``); errors
``{"error": {"id", "name", "message", "docs", "http_status_code"}}``; auth ``Authorization: bearer <token>``.
Consent metadata is kept apart from the results: on the contact (custom field 4, "Survey consent"),
never on the response.
"""

from __future__ import annotations

import functools
import json
import math
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
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
SCOPES = (
    "users_read",
    "surveys_read",
    "collectors_read",
    "contacts_read",
    "responses_read",
    "responses_read_detail",
    "contacts_write",
    "collectors_write",
)  # fmt: skip  (writes: the hand-over)
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
    if path.startswith("/v3/contact_lists"):
        return "contact_lists"
    if re.match(r"^/v3/(surveys/\w+/collectors|collectors/\w+/messages)", path):
        return "collectors"  # the invitation endpoints (collectors, messages, recipients, send)
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
    if request.method == "POST":
        return invitations(apis).handle(path, request)
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


# ---------------------------------------------------------------- inviting a list (the hand-over, issue 18)
INVITE_BASE = 7_300_000_000  # ids of contact lists, contacts, collectors, messages and recipients made here


class Invitations:
    """What the hand-over writes: contact lists with their contacts (custom fields kept), email collectors, invite
    messages with their recipients, and which messages were sent (``sent``: message id -> recipient ids). Each
    answer has the documented example's keys (tests/vendor_material/surveymonkey/*_request/_response files)."""

    def __init__(self) -> None:
        self.next_id = INVITE_BASE
        self.lists: dict[str, dict[str, Any]] = {}
        self.contacts: dict[str, dict[str, Any]] = {}  # contact id -> contact (email unique: update_existing)
        self.collectors: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, dict[str, Any]] = {}
        self.sent: dict[str, list[str]] = {}
        self.opted_out: set[str] = set()  # emails SurveyMonkey refuses as opted out (a test plants them)
        self.lock = threading.Lock()

    def _id(self) -> str:
        self.next_id += 1
        return str(self.next_id)

    def handle(self, path: str, request: Request) -> Response:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return _error(400, "1001", "Invalid Request", "The request body is not JSON.")
        if not isinstance(body, dict):
            return _error(400, "1002", "Invalid Request", "The request body is not an object.")
        with self.lock:
            return self._handle(path, body)

    def _handle(self, path: str, body: dict[str, Any]) -> Response:
        api = "https://api.surveymonkey.com/v3"
        if path == "/v3/contact_lists":
            list_id = self._id()
            self.lists[list_id] = {"name": str(body.get("name") or "New List"), "id": list_id,
                                   "href": f"{api}/contact_lists/{list_id}", "contact_ids": []}  # fmt: skip
            return Response(200, {k: v for k, v in self.lists[list_id].items() if k != "contact_ids"})
        match = re.match(r"^/v3/contact_lists/(\w+)/contacts/bulk$", path)
        if match:
            if match.group(1) not in self.lists:
                return _not_found()
            succeeded, invalids, existing = [], [], []
            for given in body.get("contacts") or []:
                email = str(given.get("email") or "").strip()
                if "@" not in email or not isinstance(given.get("custom_fields", {}), dict):
                    invalids.append(given)
                    continue
                known = next((c for c in self.contacts.values() if c["email"].lower() == email.lower()), None)
                if known is not None and not body.get("update_existing"):
                    existing.append(known)
                    continue
                contact_id = known["id"] if known else self._id()
                fields = {str(n): "" for n in range(1, 7)} | {str(k): str(v) for k, v in
                                                             (given.get("custom_fields") or {}).items()}  # fmt: skip
                self.contacts[contact_id] = {
                    "first_name": str(given.get("first_name") or ""), "last_name": str(given.get("last_name") or ""),
                    "id": contact_id, "email": email, "phone_number": None, "custom_fields": fields,
                }  # fmt: skip
                self.lists[match.group(1)]["contact_ids"].append(contact_id)
                succeeded.append(dict(self.contacts[contact_id]))
            return Response(200, {"succeeded": succeeded, "invalids": invalids, "existing": existing})
        match = re.match(r"^/v3/surveys/(\w+)/collectors$", path)
        if match:
            if match.group(1) != SURVEY_ID:
                return _not_found()
            if body.get("type") not in ("sms", "weblink", "email", "popup_invitation", "embedded_survey",
                                        "popup_survey"):  # fmt: skip
                return _error(400, "1002", "Invalid Request", "Invalid collector type.")
            collector_id = self._id()
            self.collectors[collector_id] = _collector(collector_id, body)
            return Response(200, self.collectors[collector_id])
        match = re.match(r"^/v3/collectors/(\w+)/messages$", path)
        if match:
            collector = self.collectors.get(match.group(1))
            if collector is None:
                return _not_found()
            if body.get("type") != "invite" or collector["type"] != "email":
                return _error(
                    400, "1002", "Invalid Request", "Only invite messages of email collectors here."
                )
            message_id = self._id()
            self.messages[message_id] = {
                "status": "not_sent", "body": "<html>[SurveyLink] [OptOutLink] [PrivacyLink] [FooterLink]</html>",
                "recipient_status": None, "is_branding_enabled": True,
                "href": f"{api}/collectors/{collector['id']}/messages/{message_id}", "is_scheduled": False,
                "scheduled_date": None, "date_created": _now(), "type": "invite", "id": message_id,
                "subject": str(body.get("subject") or "We want your opinion"),
                "collector_id": collector["id"], "recipients": {},
            }  # fmt: skip
            return Response(200, {k: v for k, v in self.messages[message_id].items()
                                  if k not in ("collector_id", "recipients")})  # fmt: skip
        match = re.match(r"^/v3/collectors/(\w+)/messages/(\w+)/(recipients/bulk|send)$", path)
        if match:
            message = self.messages.get(match.group(2))
            if message is None or message["collector_id"] != match.group(1):
                return _not_found()
            if message["status"] != "not_sent":
                return _error(400, "1002", "Invalid Request", "The message has already been sent.")
            if match.group(3) == "send":
                message["status"] = "sent"
                self.sent[message["id"]] = sorted(message["recipients"].values())
                return Response(200, {"is_scheduled": bool(body.get("scheduled_date")),
                                      "scheduled_date": body.get("scheduled_date"), "body": message["body"],
                                      "subject": message["subject"], "recipients": self.sent[message["id"]],
                                      "recipient_status": None, "type": "invite"})  # fmt: skip
            return Response(200, self._recipients(message, body))
        return _not_found()

    def _recipients(self, message: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, list[Any]] = {k: [] for k in ("succeeded", "invalids", "existing", "bounced",
                                                         "opted_out", "duplicate")}  # fmt: skip
        wanted = [str(c) for c in body.get("contact_ids") or []]
        for list_id in body.get("contact_list_ids") or []:
            wanted += self.lists.get(str(list_id), {}).get("contact_ids", [])
        for contact_id in wanted:
            contact = self.contacts.get(contact_id)
            if contact is None:
                answer["invalids"].append(contact_id)
            elif contact["email"].lower() in self.opted_out:
                answer["opted_out"].append(contact["email"])
            elif contact_id in message["recipients"]:
                answer["duplicate"].append(contact["email"])
            else:
                recipient_id = self._id()
                message["recipients"][contact_id] = recipient_id
                answer["succeeded"].append({
                    "phone_number": None, "id": contact_id, "email": contact["email"],
                    "href": f"https://api.surveymonkey.com/v3/collectors/{message['collector_id']}"
                            f"/recipients/{recipient_id}",
                })  # fmt: skip
        return answer

    def recipient_of(self, invitation_id: str, field: str) -> str | None:
        """The recipient id sent for the contact whose custom field ``field`` holds ``invitation_id``."""
        for message_id, _recipients in self.sent.items():
            for contact_id, recipient_id in self.messages[message_id]["recipients"].items():
                if self.contacts[contact_id]["custom_fields"].get(field) == invitation_id:
                    return recipient_id
        return None


def _collector(collector_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": "open", "id": collector_id, "type": body["type"], "name": str(body.get("name") or "New Collector"),
        "thank_you_message": "Thank you for completing our survey!",
        "disqualification_message": "Thank you for completing our survey!", "disqualification_url": None,
        "close_date": None, "closed_page_message": "Thank you for completing our survey!", "redirect_url": None,
        "display_survey_results": False, "edit_response_type": "until_complete", "anonymous_type": "not_anonymous",
        "allow_multiple_responses": False, "date_modified": _now(), "url": None, "open": True,
        "date_created": _now(), "password_enabled": False, "sender_email": body.get("sender_email"),
        "response_limit": None, "redirect_type": "url",
        "href": f"https://api.surveymonkey.com/v3/collectors/{collector_id}",
    }  # fmt: skip


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def invitations(apis: VendorApis) -> Invitations:
    """This server's SurveyMonkey write state (one per VendorApis)."""
    with apis.lock:
        book = getattr(apis, "surveymonkey_invitations", None)
        if book is None:
            book = Invitations()
            apis.surveymonkey_invitations = book  # type: ignore[attr-defined]
        return book


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
