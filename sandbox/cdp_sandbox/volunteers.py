"""The volunteer platform in the sandbox: Galaxy Digital's Get Connected API (users, responses, hours).

Followed (secondary evidence: a client generated from Galaxy's Swagger, tests/vendor_material/galaxy/):
``POST /api/users/login`` exchanges the API key (``key``) for a ``token`` that every other call carries
as a bearer token; ``GET /api/users``, ``/api/responses``, ``/api/hours`` in a ``{"data": [...]}``
envelope; ``per_page`` 1-150, ``since_id`` to page on by id, ``since_updated`` "YYYY-MM-DD HH:MM";
``show_inactive=Yes`` to list inactive records too (the default hides them; deleting an hour record only
marks it inactive); a listing with nothing (left) in it answers 404. The records carry the models' fields:
``created_at``/``updated_at`` (a response: ``response_date_added``/``response_date_updated``), the user,
need and shift as nested objects, hours from ``hour_date_start``. A response is a volunteer's sign-up to
one shift of a need; hours are what a volunteer logged, in decimal hours. Assumed where the evidence does
not say: the time format "YYYY-MM-DD HH:MM:SS" (UTC), the ``meta`` object, the 401, 404 and 429 bodies,
and the login's ``expires``.

Data comes from the world's people with its own random generator (so nothing else in the sandbox
changes): most volunteers are learners, some donors who never enrolled; a few have an email in other
capitals or with spaces (still the same person), a few are malformed (no email, a broken email), and the
responses and hours of a malformed volunteer point to a user the warehouse cannot have (orphans).

    data = volunteers.of(world)
    data.person_of("users", 17)      # -> "P0000042" (the generator's person)
    data.malformed("hours")          # {hour id: reason}
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from cdp.sources.base import SourceSettings
from cdp_sandbox.apis import Request, Response, VendorApis
from cdp_sandbox.core import WorldCore
from cdp_sandbox.formats import DAY, person_id
from cdp_sandbox.tables import MALFORMED_REASONS, REASON_CODE, Table

STREAMS = ("users", "responses", "hours")
NEEDS = (
    (501, "Course mentor (online)"),
    (502, "Forum moderator"),
    (503, "Translation of course material"),
    (504, "Fundraising phone bank"),
    (505, "Event helper"),
    (506, "Tech support volunteer"),
)
MAX_PER_PAGE = 150
FIRST_USER_ID = 7001
DOMAIN_ID = 42
SESSION_EXPIRES = "2099-12-31 23:59:59"
HOUR_STATUSES = (
    "approved",
    "pending",
    "denied",
)  # of the documented approved, inactive, pending, denied, entered


def galaxy_time(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


class VolunteerData:
    """Galaxy's three tables for one world, with the truth (person, malformed reason) beside each row."""

    def __init__(self, world: WorldCore) -> None:
        self.world = world
        rng = np.random.default_rng([world.seed, 9101])
        learners = np.arange(world.learners)
        donors = np.arange(world.first_donor_only, world.first_partner_contact)
        n_learner_vols = max(8, world.learners // 8)
        n_donor_vols = max(2, donors.shape[0] // 8) if donors.shape[0] else 0
        persons = np.concatenate(
            [rng.choice(learners, min(n_learner_vols, learners.shape[0]), replace=False),
             rng.choice(donors, min(n_donor_vols, donors.shape[0]), replace=False)]
        ).astype(np.int32)  # fmt: skip
        # A volunteer signs up after registering elsewhere, or at any time for a donor.
        created = np.maximum(world.registered[persons], world.start_ts) + rng.integers(
            DAY, 120 * DAY, persons.shape[0]
        )
        created = np.minimum(created, world.end_ts - DAY).astype(np.int64)
        order = np.argsort(created, kind="stable")
        persons, created = persons[order], created[order]
        n = persons.shape[0]
        modified = np.where(
            rng.random(n) < 0.3,
            np.minimum(created + rng.integers(DAY, 60 * DAY, n), world.end_ts - 1),
            created,
        )
        malformed = self._malformed(rng, n, ("missing_required", "malformed_email"))
        self.email_style = rng.integers(0, 6, n).astype(np.int8)  # 0: as typed elsewhere; 5: capitals/spaces
        self.status = rng.choice(3, n, p=[0.85, 0.1, 0.05]).astype(np.int8)
        self.users = Table(
            "galaxy", "users", "id", "updated_at", "modified", created, modified.astype(np.int64), persons,
            malformed, builder=self._user, id_of=lambda i: i + FIRST_USER_ID,
            index_of=lambda rid: _index(rid, FIRST_USER_ID),
        )  # fmt: skip

        # Shift responses: 0-4 per volunteer, each shift 2-4 hours, after the volunteer registered.
        per_user = rng.integers(0, 5, n)
        user_rows = np.repeat(np.arange(n), per_user)
        m = user_rows.shape[0]
        shift_start = created[user_rows] + rng.integers(2 * DAY, 200 * DAY, m)
        shift_start = (shift_start // 3600) * 3600
        shift_hours = rng.integers(2, 5, m)
        response_created = created[user_rows] + rng.integers(3600, DAY, m)
        keep = shift_start + shift_hours * 3600 < world.end_ts
        user_rows, shift_start, shift_hours, response_created = (
            user_rows[keep],
            shift_start[keep],
            shift_hours[keep],
            response_created[keep],
        )
        order = np.argsort(response_created, kind="stable")
        user_rows, shift_start, shift_hours, response_created = (
            user_rows[order],
            shift_start[order],
            shift_hours[order],
            response_created[order],
        )
        m = user_rows.shape[0]
        self.need = rng.integers(0, len(NEEDS), m).astype(np.int8)
        self.response_active = rng.random(m) < 0.9
        self.responses = Table(
            "galaxy", "responses", "id", "response_date_updated", "modified", response_created,
            response_created.copy(), persons[user_rows],
            self._malformed(rng, m, ("missing_required", "impossible_date")),
            builder=self._response, id_of=lambda i: i + 90001, index_of=lambda rid: _index(rid, 90001),
            columns={"user_row": user_rows, "start": shift_start, "hours": shift_hours},
        )  # fmt: skip

        # Hours: most active shifts get their hours logged within a week, most approved.
        logged = self.response_active & (rng.random(m) < 0.85)
        hour_rows = np.nonzero(logged)[0]
        logged_at = (
            shift_start[hour_rows]
            + shift_hours[hour_rows] * 3600
            + rng.integers(600, 7 * DAY, hour_rows.shape[0])
        )
        keep = logged_at < world.end_ts
        hour_rows, logged_at = hour_rows[keep], logged_at[keep]
        order = np.argsort(logged_at, kind="stable")
        hour_rows, logged_at = hour_rows[order], logged_at[order]
        k = hour_rows.shape[0]
        self.hour_status = rng.choice(3, k, p=[0.85, 0.1, 0.05]).astype(np.int8)
        self.hour_quarter = rng.integers(-1, 2, k).astype(np.int8)  # logged 15 min less, exact, or more
        self.hours = Table(
            "galaxy", "hours", "id", "updated_at", "modified", logged_at, logged_at.copy(),
            persons[user_rows[hour_rows]],
            self._malformed(rng, k, ("missing_required", "non_numeric_amount", "negative_amount")),
            builder=self._hour, id_of=lambda i: i + 400001, index_of=lambda rid: _index(rid, 400001),
            columns={"response": hour_rows},
        )  # fmt: skip
        self.tables = {"users": self.users, "responses": self.responses, "hours": self.hours}
        for table in self.tables.values():
            world.settle(table)

    def _malformed(self, rng: np.random.Generator, rows: int, reasons: tuple[str, ...]) -> np.ndarray:
        """At least one malformed row of each kind when the world has any malformation at all."""
        codes = np.zeros(rows, dtype=np.int8)
        if self.world.malformed_rate <= 0 or rows == 0:
            return codes
        count = min(rows, max(len(reasons), round(rows * self.world.malformed_rate * 4)))
        picked = rng.choice(rows, count, replace=False)
        codes[picked] = [REASON_CODE[reasons[j % len(reasons)]] for j in range(count)]
        return codes

    # ---------------------------------------------------------------- truth
    def person_of(self, stream: str, record_id: Any) -> str | None:
        table = self.tables[stream]
        return person_id(int(table.person[table.index_of(record_id)]))

    def malformed(self, stream: str) -> dict[Any, str]:
        return self.tables[stream].malformed_rows()

    def user_malformed(self, row: int) -> bool:
        return bool(self.users.malformed[row])

    # ---------------------------------------------------------------- records
    def _user(self, i: int) -> dict[str, Any]:
        world, person = self.world, int(self.users.person[i])
        parts = world.name(person)
        email = world.email(person)
        if self.email_style[i] == 5:
            email = f" {email[:1].upper()}{email[1:]}"
        reason = MALFORMED_REASONS[int(self.users.malformed[i])]
        if reason == "missing_required":
            email = ""
        elif reason == "malformed_email":
            email = email.replace("@", " at ")
        return {
            "id": i + FIRST_USER_ID,
            "domain_id": DOMAIN_ID,
            "user_fname": parts.given,
            "user_lname": parts.family or "",
            "user_email": email,
            "user_phone": world.phone(person),
            "user_status": ("active", "inactive", "pending")[int(self.status[i])],
            "created_at": galaxy_time(int(self.users.created[i])),
            "updated_at": galaxy_time(int(self.users.modified[i])),
        }

    def user_mini(self, user_row: int) -> dict[str, Any]:
        """userMiniObject: how a response or an hour record names its volunteer."""
        person = int(self.users.person[user_row])
        return {
            "id": user_row + FIRST_USER_ID,
            "domain_id": DOMAIN_ID,
            "user_fname": self.world.name(person).given,
            "user_lname": self.world.name(person).family or "",
            "user_email": self.world.email(person),
        }

    def _response(self, i: int) -> dict[str, Any]:
        table = self.responses
        user_row = int(table.columns["user_row"][i])
        start = int(table.columns["start"][i])
        end = start + int(table.columns["hours"][i]) * 3600
        reason = MALFORMED_REASONS[int(table.malformed[i])]
        need_id, title = NEEDS[int(self.need[i])]
        return {
            "id": i + 90001,
            "domain_id": DOMAIN_ID,
            "user": self.user_mini(user_row),
            "need": {"id": need_id, "domain_id": DOMAIN_ID, "need_title": title},
            "shift": {
                "id": None if reason == "missing_required" else need_id * 100_000 + start // DAY,
                "start": galaxy_time(start),
                "end": galaxy_time(start - 3600 if reason == "impossible_date" else end),
                "duration": str(int(table.columns["hours"][i])),
                "slots": 10,
            },
            "response_status": "active" if self.response_active[i] else "inactive",
            "response_date_added": galaxy_time(int(table.created[i])),
            "response_date_updated": galaxy_time(int(table.modified[i])),
        }

    def hour_minutes(self, i: int) -> int:
        response = int(self.hours.columns["response"][i])
        return int(self.responses.columns["hours"][response]) * 60 + 15 * int(self.hour_quarter[i])

    def _hour(self, i: int) -> dict[str, Any]:
        table = self.hours
        response = int(table.columns["response"][i])
        reason = MALFORMED_REASONS[int(table.malformed[i])]
        hours: Any = f"{self.hour_minutes(i) / 60:.2f}"
        if reason == "non_numeric_amount":
            hours = "two and a half"
        elif reason == "negative_amount":
            hours = f"-{hours}"
        shift_start = int(self.responses.columns["start"][response])
        need_id, title = NEEDS[int(self.need[response])]
        return {
            "id": i + 400001,
            "domain_id": DOMAIN_ID,
            "user": self.user_mini(int(self.responses.columns["user_row"][response])),
            "need": {"id": need_id, "domain_id": DOMAIN_ID, "need_title": title},
            "hour_date_start": "" if reason == "missing_required" else galaxy_time(shift_start),
            "hour_hours": hours,
            "hour_status": HOUR_STATUSES[int(self.hour_status[i])],
            "created_at": galaxy_time(int(table.created[i])),
            "updated_at": galaxy_time(int(table.modified[i])),
        }


def _index(record_id: Any, first: int) -> int | None:
    try:
        return int(record_id) - first
    except (TypeError, ValueError):
        return None


def of(world: WorldCore) -> VolunteerData:
    """The world's volunteer platform, built once on first use."""
    data = world.__dict__.get("_volunteers")
    if data is None:
        data = world.__dict__["_volunteers"] = VolunteerData(world)
    return data


# ---------------------------------------------------------------- the API
_SINCE_UPDATED = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}(:\d{2})?)?$")


def token_for(key: str) -> str:
    """The session token the login hands out for an API key (stable, so a test can predict it)."""
    return "gx-" + hashlib.sha256(f"galaxy-session:{key}".encode()).hexdigest()[:32]


def _inactive(data: VolunteerData, stream: str, rows: np.ndarray) -> np.ndarray:
    """Which of these rows Galaxy lists only with ``show_inactive=Yes``."""
    if stream == "users":
        return data.status[rows] == 1
    if stream == "responses":
        return ~data.response_active[rows]
    return np.zeros(rows.shape[0], dtype=bool)


def handle(apis: VendorApis, request: Request) -> Response:
    """``POST /api/users/login`` and ``GET /api/{users,responses,hours}`` as Galaxy Digital answers them."""
    login = request.path.rstrip("/") == "/api/users/login"
    match = re.match(r"^/api/(users|responses|hours)/?$", request.path)
    stream = match.group(1) if match else None
    fault = apis.request_faults(
        "galaxy",
        stream,
        {
            "rate_limit": lambda f: Response(
                429, {"error": "Too Many Attempts."}, {"Retry-After": str(f.retry_after)}
            ),
            "server_error": lambda f: Response(f.status, {"error": "Server Error"}),
            "auth_failure": lambda f: Response(401, {"error": "Unauthenticated."}),
        },
    )
    if fault:
        return fault
    key = apis.world.credentials.for_source("galaxy")
    if login:
        if request.method != "POST":
            return Response(405, {"error": "Method Not Allowed"})
        try:
            sent = json.loads(request.body or b"{}").get("key")
        except ValueError:
            sent = None
        if sent != key:
            return Response(401, {"error": "Unauthenticated."})
        # A session that outlives any test run (a world's own clock may be years in the past).
        return Response(200, {"data": {"user": None, "token": token_for(key), "expires": SESSION_EXPIRES}})
    if request.headers.get("authorization") != f"Bearer {token_for(key)}":
        return Response(401, {"error": "Unauthenticated."})
    if stream is None:
        return Response(404, {"error": "Not Found"})
    try:
        per_page = int(request.arg("per_page") or 20)
        since_id = int(request.arg("since_id") or 0)
    except ValueError:
        return Response(422, {"error": "per_page and since_id must be integers"})
    if not 1 <= per_page <= MAX_PER_PAGE:
        return Response(422, {"error": f"per_page must be between 1 and {MAX_PER_PAGE}"})
    since_updated = request.arg("since_updated")
    since_ts = None
    if since_updated:
        if not _SINCE_UPDATED.match(since_updated):
            return Response(422, {"error": "since_updated must be a date-time like 2026-01-01 15:00"})
        since_ts = int(datetime.fromisoformat(since_updated).replace(tzinfo=UTC).timestamp())
    data = of(apis.world)
    table = data.tables[stream]
    first = {"users": FIRST_USER_ID, "responses": 90001, "hours": 400001}[stream]
    with apis.lock:
        rows = np.arange(max(0, since_id - first + 1), len(table))
        if since_ts is not None:
            rows = rows[table.modified[rows] >= since_ts]
        horizon = apis.world.horizon()
        if horizon is not None:  # what has not happened yet
            rows = rows[table.created[rows] < horizon]
        if (request.arg("show_inactive") or "No").lower() != "yes":
            rows = rows[~_inactive(data, stream, rows)]
        rows = rows[:per_page]
    if rows.shape[0] == 0:
        return Response(404, {"error": "No results found."})  # Galaxy answers an empty listing with a 404
    return Response(
        200,
        {"data": [table.record(int(i)) for i in rows], "meta": {"per_page": per_page, "since_id": since_id}},
    )


CREDENTIAL = "galaxy-sandbox-api-key"


def settings(world: WorldCore, base_url: str, ledger_folder: object = None) -> SourceSettings:
    return SourceSettings(f"{base_url}/galaxy/api", world.credentials.for_source("galaxy"), {})


def api(apis: VendorApis) -> Callable[[Request], Response]:
    return functools.partial(handle, apis)
