"""The support desk in the sandbox: Zendesk Support's Incremental Ticket Export (cursor based) and search count.

Followed (developer.zendesk.com, "Incremental Exports" and "Using the Incremental Export API"; "Search"):
``GET /api/v2/incremental/tickets/cursor.json?start_time={unix}`` returns the tickets created or changed
on or after ``start_time`` (compared with each ticket's ``generated_timestamp``) as
``{"tickets": [...], "after_url", "after_cursor", "before_url", "before_cursor", "end_of_stream"}``;
the next page is ``?cursor={after_cursor}`` until ``end_of_stream`` is true; ``per_page`` up to 1000;
``include=users`` side-loads the page's users in ``users``; a ``start_time`` less than a minute old is
refused. ``GET /api/v2/search/count?query=type:ticket ...`` answers ``{"count": N}``. Auth is HTTP basic
with ``{agent email}/token`` and the API token; 401 answers ``{"error": "Couldn't authenticate you"}``.
Assumed where the pages we read do not say: the cursor's content (opaque to clients, here base64 of the
keyset position), the 429 body, and that search takes ``updated>=`` / ``updated<`` with ISO 8601 times.

Data comes from the world's people with its own random generator (nothing else in the sandbox changes):
tickets from learners, from referral subscribers (often about their referral: tag ``referral`` and/or the
custom field "Referral" naming the ReferralHero subscriber id), from donors, and from people the warehouse
has never seen (unknown emails); a few are malformed (no requester, an unknown status, February 30th, a
broken requester email) and must land in the quarantine with their reason.

    data = zendesk.of(world)             # the table is also world.table("zendesk", "tickets")
    data.referral_related(row)           # -> True when the ticket is about a referral (the KPI's numerator)
    data.requester_email(row)            # -> the email the requester wrote from
"""

from __future__ import annotations

import base64
import functools
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import numpy as np

from cdp.sources.base import SourceSettings
from cdp_sandbox.apis import Request, Response, VendorApis
from cdp_sandbox.core import WorldCore
from cdp_sandbox.formats import DAY, iso_z
from cdp_sandbox.tables import MALFORMED_REASONS, REASON_CODE, Table

SUBDOMAIN = "cdp-sandbox"
AGENT_EMAIL = "sync-agent@sandbox.example.org"
REFERRAL_FIELD_ID = 360_000_424_242  # the custom ticket field "Referral" (a ReferralHero subscriber id)
COURSE_FIELD_ID = 360_000_424_243  # another custom field, "Course", so the referral one must be picked out
FIRST_TICKET_ID = 1001
KNOWN_USER_BASE = 360_100_000_000  # Zendesk user id of a world person: base + person index
UNKNOWN_USER_BASE = 360_900_000_000  # of a requester the warehouse has never seen: base + ticket row
AGENT_ID = 360_000_000_007
MAX_PER_PAGE = 1000
STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
# Requester kinds: 0 a learner, 1 a referral subscriber, 2 an unknown email, 3 a donor who never enrolled.
LEARNER, SUBSCRIBER, UNKNOWN, DONOR = range(4)
REFERRAL_SUBJECTS = (
    "My friend signed up with my link but I got no reward",
    "Where is my referral reward?",
    "Referral link does not work",
    "I was referred but the sign-up did not count",
)
OTHER_SUBJECTS = (
    "Cannot log in to my course",
    "Certificate not received",
    "Change the email on my account",
    "Video does not play",
    "Question about my donation receipt",
    "How do I unsubscribe?",
)


class TicketData:
    """The tickets of one world, with the truth (requester, referral) beside each row."""

    def __init__(self, world: WorldCore) -> None:
        self.world = world
        rng = np.random.default_rng([world.seed, 9301])
        subscribers = world.table("referralhero", "subscribers")
        n = max(24, world.learners // 8)
        donors = world.first_partner_contact - world.first_donor_only
        kind = rng.choice(4, n, p=[0.4, 0.3, 0.2, 0.1] if donors else [0.5, 0.3, 0.2, 0.0]).astype(np.int8)
        if len(subscribers) == 0:
            kind[kind == SUBSCRIBER] = LEARNER
        subscriber_row = np.where(kind == SUBSCRIBER, rng.integers(0, max(1, len(subscribers)), n), -1)
        person = np.full(n, -1, np.int64)
        learner_pick = rng.integers(0, world.learners, n)
        donor_pick = world.first_donor_only + rng.integers(0, max(1, donors), n)
        person[kind == LEARNER] = learner_pick[kind == LEARNER]
        person[kind == DONOR] = donor_pick[kind == DONOR]
        is_sub = kind == SUBSCRIBER
        person[is_sub] = subscribers.person[subscriber_row[is_sub]]
        # A ticket comes after its requester registered (subscribers: after they joined ReferralHero).
        after = np.full(n, world.start_ts, np.int64)
        known = person >= 0
        after[known] = np.maximum(world.registered[person[known]], world.start_ts)
        after[is_sub] = np.maximum(after[is_sub], subscribers.created[subscriber_row[is_sub]])
        span = np.maximum(world.end_ts - 1 - after, 1)
        created = after + (span * rng.random(n)).astype(np.int64)
        order = np.argsort(created, kind="stable")
        kind, subscriber_row, person, created = (
            kind[order],
            subscriber_row[order],
            person[order],
            created[order],
        )
        edited = rng.random(n) < 0.4
        modified = np.where(
            edited, np.minimum(created + rng.integers(3600, 30 * DAY, n), world.end_ts - 1), created
        )
        # About a referral: tagged `referral`, or the Referral field names the subscriber, or both.
        about = np.where(kind == SUBSCRIBER, rng.random(n) < 0.7, rng.random(n) < 0.06)
        how = rng.integers(0, 3, n)  # 0: tag only, 1: field only, 2: both (field only for subscribers)
        self.tagged = about & ((how != 1) | (kind != SUBSCRIBER))
        self.field_names_referral = about & (how != 0) & (kind == SUBSCRIBER)
        self.kind, self.subscriber_row = kind, subscriber_row
        self.status = rng.choice(len(STATUSES), n, p=[0.1, 0.25, 0.1, 0.05, 0.3, 0.2]).astype(np.int8)
        self.subject = rng.integers(0, 12, n).astype(np.int8)
        self.table = Table(
            "zendesk", "tickets", "id", "updated_at", "modified", created.astype(np.int64), modified.astype(np.int64),
            person.astype(np.int32), self._malformed(rng, n), builder=self._ticket,
            id_of=lambda i: i + FIRST_TICKET_ID, index_of=_index,
            columns={"kind": kind, "subscriber_row": subscriber_row},
        )  # fmt: skip

    def _malformed(self, rng: np.random.Generator, rows: int) -> np.ndarray:
        """At least one malformed ticket of each kind when the world has any malformation at all."""
        reasons = ("missing_required", "unknown_enum", "impossible_date", "malformed_email")
        codes = np.zeros(rows, dtype=np.int8)
        if self.world.malformed_rate <= 0:
            return codes
        count = min(rows, max(len(reasons), round(rows * self.world.malformed_rate * 4)))
        picked = rng.choice(rows, count, replace=False)
        codes[picked] = [REASON_CODE[reasons[j % len(reasons)]] for j in range(count)]
        return codes

    # ---------------------------------------------------------------- truth
    def referral_related(self, row: int) -> bool:
        return bool(self.tagged[row] or self.field_names_referral[row])

    def referral_subscriber(self, row: int) -> str | None:
        """The ReferralHero subscriber id the Referral field names, if it names one."""
        if not self.field_names_referral[row]:
            return None
        return self.world.table("referralhero", "subscribers").id_of(int(self.subscriber_row[row]))

    def requester_id(self, row: int) -> int:
        """One Zendesk user per person; a requester whose email is broken is a user of its own."""
        person = int(self.table.person[row])
        if person < 0 or MALFORMED_REASONS[int(self.table.malformed[row])] == "malformed_email":
            return UNKNOWN_USER_BASE + row
        return KNOWN_USER_BASE + person

    def requester_email(self, row: int) -> str:
        person = int(self.table.person[row])
        email = self.world.email(person) if person >= 0 else f"visitor.{row:05d}@mail.example.net"
        if MALFORMED_REASONS[int(self.table.malformed[row])] == "malformed_email":
            return email.replace("@", " at ")
        if person >= 0 and person % 6 == 5:  # typed in capitals with spaces: still the same person
            return f" {email.upper()} "
        return email

    def requester_name(self, row: int) -> str:
        person = int(self.table.person[row])
        return self.world.name(person).full if person >= 0 else f"Visitor {row}"

    # ---------------------------------------------------------------- records
    def _ticket(self, i: int) -> dict[str, Any]:
        table = self.table
        reason = MALFORMED_REASONS[int(table.malformed[i])]
        created, modified = int(table.created[i]), int(table.modified[i])
        ticket_id = i + FIRST_TICKET_ID
        subjects = REFERRAL_SUBJECTS if self.referral_related(i) else OTHER_SUBJECTS
        subject = subjects[int(self.subject[i]) % len(subjects)]
        tags = ["web_form"] + (["referral"] if self.tagged[i] else [])
        requester = None if reason == "missing_required" else self.requester_id(i)
        return {
            "url": f"https://{SUBDOMAIN}.zendesk.com/api/v2/tickets/{ticket_id}.json",
            "id": ticket_id,
            "external_id": None,
            "via": {"channel": "web", "source": {"from": {}, "to": {}, "rel": None}},
            "created_at": f"{datetime.fromtimestamp(created, UTC).year}-02-30T10:00:00Z"
            if reason == "impossible_date"
            else iso_z(created),
            "updated_at": iso_z(modified),
            "generated_timestamp": modified,
            "type": "question",
            "subject": subject,
            "raw_subject": subject,
            "description": f"{subject}. (ticket {ticket_id})",
            "priority": "normal",
            "status": "escalated" if reason == "unknown_enum" else STATUSES[int(self.status[i])],
            "requester_id": requester,
            "submitter_id": requester,
            "assignee_id": AGENT_ID,
            "organization_id": None,
            "group_id": 360_000_000_100,
            "tags": tags,
            "custom_fields": [
                {"id": COURSE_FIELD_ID, "value": None},
                {"id": REFERRAL_FIELD_ID, "value": self.referral_subscriber(i)},
            ],
            "satisfaction_rating": None,
            "brand_id": 360_000_000_001,
            "allow_attachments": True,
            "is_public": True,
        }

    def user(self, row: int) -> dict[str, Any]:
        """The requester of ticket row ``row`` as Zendesk side-loads it."""
        user_id = self.requester_id(row)
        created = int(self.table.created[row])
        return {
            "id": user_id,
            "url": f"https://{SUBDOMAIN}.zendesk.com/api/v2/users/{user_id}.json",
            "name": self.requester_name(row),
            "email": self.requester_email(row),
            "role": "end-user",
            "verified": True,
            "created_at": iso_z(created),
            "updated_at": iso_z(created),
        }


def _index(record_id: Any) -> int | None:
    try:
        return int(record_id) - FIRST_TICKET_ID
    except (TypeError, ValueError):
        return None


def build(world: WorldCore) -> None:
    """Add the support desk's tickets to the world (once, after ReferralHero: see ``cdp_sandbox.vendors``)."""
    data = TicketData(world)
    world.__dict__["_zendesk"] = data
    world.add_table(data.table)


def of(world: WorldCore) -> TicketData:
    return world.__dict__["_zendesk"]


# ---------------------------------------------------------------- the API
_SEARCH_BOUND = re.compile(r"updated(>=|<)(\S+)")


def _cursor(position: tuple[int, int]) -> str:
    return base64.urlsafe_b64encode(f"{position[0]}:{position[1]}".encode()).decode().rstrip("=")


def _position(cursor: str) -> tuple[int, int] | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, index = text.split(":")
        return int(at), int(index)
    except (ValueError, UnicodeDecodeError):
        return None


def _authorized(apis: VendorApis, request: Request) -> bool:
    header = request.headers.get("authorization", "")
    if not header.startswith("Basic "):
        return False
    try:
        user, _, token = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    return user.endswith("/token") and "@" in user and token == apis.world.credentials.for_source("zendesk")


def handle(apis: VendorApis, request: Request) -> Response:
    """``GET /api/v2/incremental/tickets/cursor.json`` and ``GET /api/v2/search/count`` as Zendesk answers."""
    fault = apis.request_faults(
        "zendesk",
        "tickets",
        {
            "rate_limit": lambda f: Response(
                429, {"error": "APIRateLimitExceeded"}, {"Retry-After": str(f.retry_after)}
            ),
            "server_error": lambda f: Response(f.status, {"error": "InternalError"}),
            "auth_failure": lambda f: Response(401, {"error": "Couldn't authenticate you"}),
        },
    )
    if fault:
        return fault
    if not _authorized(apis, request):
        return Response(401, {"error": "Couldn't authenticate you"})
    data = of(apis.world)
    if request.path == "/api/v2/search/count":
        return _search_count(data, request.arg("query") or "")
    if request.path == "/api/v2/users/me.json":  # the authenticated agent (what `cdp sources check` reads)
        return Response(200, {"user": {"id": 361_000_000_001, "email": AGENT_EMAIL, "role": "admin",
                                       "active": True, "name": "Sandbox Agent"}})  # fmt: skip
    field = re.match(r"^/api/v2/ticket_fields/(\d+)\.json$", request.path)
    if field:
        if int(field.group(1)) != REFERRAL_FIELD_ID:
            return Response(404, {"error": "RecordNotFound", "description": "Not found"})
        return Response(200, {"ticket_field": {"id": REFERRAL_FIELD_ID, "type": "text", "title": "Referral",
                                               "active": True}})  # fmt: skip
    if request.path != "/api/v2/incremental/tickets/cursor.json":
        return Response(404, {"error": "InvalidEndpoint", "description": "Not found"})
    try:
        per_page = int(request.arg("per_page") or MAX_PER_PAGE)
    except ValueError:
        return Response(400, {"error": "InvalidValue", "description": "per_page must be an integer"})
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    cursor = request.arg("cursor")
    if cursor is not None:
        position = _position(cursor)
        if position is None:
            return Response(422, {"error": "InvalidPaginationParameter", "description": "invalid cursor"})
        since, after = None, position
    else:
        try:
            since = int(request.arg("start_time") or "")
        except ValueError:
            return Response(
                400, {"error": "InvalidValue", "description": "start_time is required (Unix epoch)"}
            )
        if since > time.time() - 60:
            return Response(
                400,
                {
                    "error": "InvalidValue",
                    "description": "Too recent start_time. Use a start_time older than 1 minute",
                },
            )
        after = None
    with apis.lock:
        rows, more = data.table.page(since, None, per_page, after=after, column="modified")
        if rows:
            last = rows[-1]
            after = (int(data.table.modified[last]), last)
        elif after is None:
            after = (since or 0, -1)
        tickets = [data.table.record(row) for row in rows]
        for fault in apis.faults.list():  # an unannounced API change: a field under another name
            if fault.kind == "rename_field" and fault.matches("zendesk", "tickets"):
                for ticket in tickets:
                    if fault.field in ticket:
                        ticket[fault.renamed_to] = ticket.pop(fault.field)
        users = {}
        if "users" in (request.arg("include") or "").split(","):
            users = {
                data.requester_id(row): data.user(row)
                for row, ticket in zip(rows, tickets, strict=True)
                if ticket.get("requester_id") is not None
            }
    next_cursor = _cursor(after)
    base = f"https://{SUBDOMAIN}.zendesk.com/api/v2/incremental/tickets/cursor.json"
    body: dict[str, Any] = {
        "tickets": tickets,
        "after_url": None if not more else f"{base}?cursor={quote(next_cursor)}",
        "after_cursor": next_cursor,
        "before_url": None,
        "before_cursor": None,
        "end_of_stream": not more,
    }
    if users:
        body["users"] = list(users.values())
    return Response(200, body)


def _search_count(data: TicketData, query: str) -> Response:
    if "type:ticket" not in query.split():
        return Response(400, {"error": "InvalidValue", "description": "only type:ticket is served here"})
    bounds: dict[str, int] = {}
    for operator, value in _SEARCH_BOUND.findall(query):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return Response(400, {"error": "InvalidValue", "description": f"unparsable date {value!r}"})
        bounds[operator] = int(moment.replace(tzinfo=moment.tzinfo or UTC).timestamp())
    return Response(200, {"count": data.table.count(bounds.get(">="), bounds.get("<"), "modified")})


CREDENTIAL = "zendesk-sandbox-api-token"


def settings(world: WorldCore, base_url: str, ledger_folder: object = None) -> SourceSettings:
    extra = {"email": AGENT_EMAIL, "referral_field_id": REFERRAL_FIELD_ID}
    return SourceSettings(f"{base_url}/zendesk", world.credentials.for_source("zendesk"), extra)


def api(apis: VendorApis) -> Callable[[Request], Response]:
    return functools.partial(handle, apis)
