"""The registration form in the sandbox: its submissions, and the signed webhooks it sends.

The form has no API to poll: it pushes each submission to the webhook intake (``cdp.webhooks``, ``POST
/cdp-webhooks/registration``) in the shape ``cdp.webhooks.formats`` documents, signed as
``cdp.webhooks.signatures`` checks it (``X-Registration-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>``).
The sandbox's stand-in:

- ``submissions``: about a third of the learners register through the form, minutes before their Moodle
  account exists (the same person in both: the sync joins them by email); a few submissions are malformed as
  forms let them through (a broken email, February 30th, an unknown parental-consent answer, no first name).
- ``WebhookSender``: posts every submission whose time has come to the intake, signed with the form's
  secret, in time order; a delivery the intake does not take (a non-2xx answer, no connection) is retried at
  the next tick, as webhook senders do. A live sandbox (``cdp sandbox serve --live
  --registration-webhook-url URL``) runs one, so new registrations reach the warehouse while ``make run`` runs.
- ``/registration`` on the sandbox server (the sender's own console, not a vendor API):
  ``GET /registration/events?since=&until=`` lists the events the form has (would have) sent, and
  ``POST /registration/deliver`` (JSON ``{"url", "since", "until"}``, url defaulting to the sender's) sends
  a window of them now, e.g. to replay the history into a fresh warehouse.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cdp.sources.base import SourceSettings
from cdp.webhooks import signatures
from cdp_sandbox import people
from cdp_sandbox.apis import Request, Response, VendorApis, parse_time
from cdp_sandbox.core import PARENTAL_CONSENT, WorldCore
from cdp_sandbox.formats import impossible_date, iso_z
from cdp_sandbox.tables import MALFORMED_REASONS, Table

log = logging.getLogger(__name__)

#: The form's signing secret in the sandbox (the intake's ``webhook_registration`` connection password).
CREDENTIAL = "sandbox-registration-signing-secret-0001"
FORM_ID = "learner-registration"
FORM_VERSION = "2026-09"
SHARE_OF_LEARNERS = 0.35
_PREFIX = "sub-"


def settings(world: WorldCore, base_url: str, ledger_folder: object = None) -> SourceSettings:
    """Where the form's console is and the secret it signs with (what the intake must be configured with)."""
    return SourceSettings(
        f"{base_url}/registration",
        world.credentials.for_source("registration"),
        {"forms": {FORM_ID: "submissions"}},
    )


# ---------------------------------------------------------------- data
def build(world: WorldCore) -> None:
    rng = world.rng(20)
    learners = np.arange(world.learners)
    persons = learners[rng.random(world.learners) < SHARE_OF_LEARNERS].astype(np.int32)
    before = rng.integers(60, 1800, persons.shape[0])
    created = np.maximum(world.registered[persons] - before, world.start_ts).astype(np.int64)
    malformed = world.draw_malformed(
        rng, persons.shape[0], ("malformed_email", "impossible_date", "unknown_enum", "missing_required")
    )
    tag = world.seed_tag("registration")[:6]

    def index_of(record_id: Any) -> int | None:
        text = str(record_id)
        if not text.startswith(f"{_PREFIX}{tag}") or not text[len(_PREFIX) + 6 :].isdigit():
            return None
        index = int(text[len(_PREFIX) + 6 :])
        return index if 0 <= index < persons.shape[0] else None

    world.add_table(
        Table(
            "registration",
            "submissions",
            "id",
            "submitted_at",
            "created",
            created,
            created.copy(),
            persons,
            malformed,
            builder=lambda i: _event(world, i),
            id_of=lambda i: f"{_PREFIX}{tag}{i:07d}",
            index_of=index_of,
        )
    )


def _event(world: WorldCore, i: int) -> dict[str, Any]:
    """The webhook body the form sends for one submission."""
    table = world.tables[("registration", "submissions")]
    person = int(table.person[i])
    submitted = iso_z(int(table.created[i]))
    reason = MALFORMED_REASONS[int(table.malformed[i])]
    name = world.name(person)
    salt = int(world.salt[person])
    email = world.email(person)
    consent: dict[str, Any] = {
        "marketing": bool(world.marketing_opt_in[person]),
        "receipt_id": f"rcpt-{table.id_of(i)[len(_PREFIX) :]}",
    }
    parental = int(world.parental_consent[person])
    if world.age_years(np.array([person]))[0] in range(0, 18):
        consent |= {
            "parental": PARENTAL_CONSENT[parental],
            "parental_method": "signed consent form" if parental == 2 else None,
            "guardian_name": f"{world.name(int(world.household_head[person])).given} {name.family}".strip(),
        }
    born = world.birth_date(person)
    first_name = name.given
    if reason == "malformed_email":
        email = people.break_email(email, salt)
    elif reason == "impossible_date":
        born = impossible_date(int(table.created[i]))
    elif reason == "unknown_enum":
        consent["parental"] = "maybe"
    elif reason == "missing_required":
        first_name = ""
    return {
        "event_id": f"evt-{table.id_of(i)}",
        "event_type": "registration.submitted",
        "occurred_at": submitted,
        "form_id": FORM_ID,
        "data": {
            "id": table.id_of(i),
            "submitted_at": submitted,
            "form_version": FORM_VERSION,
            "first_name": first_name,
            "last_name": name.family,
            "email": email,
            "phone": world.phone(person) if salt % 3 else None,
            "date_of_birth": born,
            "country": world.country_code(person),
            "consent": consent,
        },
    }


def events(world: WorldCore, since: int | None = None, until: int | None = None) -> list[dict[str, Any]]:
    """The events the form has sent in [since, until), oldest first (never one that has not happened)."""
    table = world.table("registration", "submissions")
    return [table.record(int(i)) for i in table.window(since, until)]


# ---------------------------------------------------------------- the sender
def signed(secret: str, event: dict[str, Any], at: int | None = None) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one delivery, signed as the intake checks it."""
    body = json.dumps(event, separators=(",", ":")).encode()
    headers = signatures.sign("registration", secret, body, int(time.time()) if at is None else at)
    return body, {"Content-Type": "application/json", **headers}


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 10.0) -> int:
    """POST one delivery; its HTTP status (0: no connection)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - a configured URL
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, OSError):
        return 0


@dataclass
class WebhookSender:
    """Sends the form's submissions to a webhook URL as their time comes, retrying what was not taken."""

    world: WorldCore
    url: str
    secret: str = CREDENTIAL
    interval: float = 60.0
    send: Callable[[str, bytes, dict[str, str]], int] = post
    #: Deliveries so far: (submission id, HTTP status), newest last.
    deliveries: list[tuple[str, int]] = field(default_factory=list)
    _sent_until: int | None = None
    _pending: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        # The history was delivered before this sandbox started: the sender begins at the reference day.
        self._sent_until = self.world.present_ts

    def deliver(self, rows: list[int], url: str | None = None) -> list[tuple[str, int]]:
        table = self.world.table("registration", "submissions")
        results = []
        for row in rows:
            body, headers = signed(self.secret, table.record(row))
            results.append((str(table.id_of(row)), self.send(url or self.url, body, headers)))
        self.deliveries.extend(results)
        return results

    def tick(self) -> int:
        """Send what became due since the last tick and retry what failed; how many were taken."""
        table = self.world.table("registration", "submissions")
        horizon = self.world.horizon()
        due = [int(i) for i in table.window(self._sent_until, horizon)]
        self._sent_until = horizon if horizon is not None else self._sent_until
        rows, self._pending = [*self._pending, *due], []
        taken = 0
        for row, (_, status) in zip(rows, self.deliver(rows), strict=True):
            if 200 <= status < 300:
                taken += 1
            else:
                self._pending.append(row)
        if rows:
            log.info(
                "registration webhooks: %d sent, %d taken, %d to retry", len(rows), taken, len(self._pending)
            )
        return taken

    def start(self) -> WebhookSender:
        self._thread = threading.Thread(target=self._run, name="sandbox-registration-webhooks", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # the sender keeps going, like the form's own queue
                log.exception("registration webhooks: a tick failed")
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


# ---------------------------------------------------------------- the console
def api(apis: VendorApis) -> Callable[[Request], Response]:
    return functools.partial(handle, apis)


def handle(apis: VendorApis, request: Request) -> Response:
    try:
        since, until = parse_time(request.arg("since")), parse_time(request.arg("until"))
    except ValueError as error:
        return Response(400, {"error": str(error)})
    if request.path.rstrip("/") == "/events" and request.method == "GET":
        with apis.lock:
            found = events(apis.world, since, until)
        return Response(200, {"data": found, "count": len(found)})
    if request.path.rstrip("/") == "/deliver" and request.method == "POST":
        try:
            spec = json.loads(request.body or b"{}")
            since, until = (
                None if spec.get(k) is None else parse_time(str(spec[k])) for k in ("since", "until")
            )
        except (TypeError, ValueError, AttributeError) as error:
            return Response(400, {"error": f"deliver takes JSON {{url, since, until}}: {error}"})
        sender: WebhookSender | None = getattr(apis, "registration_sender", None)
        url = spec.get("url") or (sender.url if sender else None)
        if not url:
            return Response(400, {"error": "no url given and no webhook sender configured"})
        table = apis.world.table("registration", "submissions")
        rows = [int(i) for i in table.window(since, until)]
        target = sender or WebhookSender(apis.world, url)
        results = target.deliver(rows, url)
        statuses: dict[str, int] = {}
        for _, status in results:
            statuses[str(status)] = statuses.get(str(status), 0) + 1
        return Response(200, {"sent": len(results), "statuses": statuses})
    return Response(404, {"error": "the form's console has GET /events and POST /deliver"})
