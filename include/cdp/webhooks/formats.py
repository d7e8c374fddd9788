"""What identifies an event in each sender's payload, and the record inside it in the polling API's shape.

Typeform (documented, https://www.typeform.com/developers/webhooks/example-payload/): ``{"event_id",
"event_type": "form_response", "form_response": {"form_id", "token", "landed_at", "submitted_at",
"hidden", "answers", "definition", …}}``. The record handed on is the Responses API's shape (the
``response_id`` and ``landing_id`` are the token; the form definition is dropped; ``form_id`` stays, and
names the survey where a polled response only has its ``metadata.referer``), so the polling stream's spec
and SQL read both alike and the same response from either path is one row (tests/webhooks/
test_webhook_and_poll.py).

Zigpoll (ASSUMED, Zigpoll documents no webhook body we could check): ``{"id", "type": "response.created",
"createdAt", "data": <the response object as GET /responses returns it>}``.

Registration form (ours, ASSUMED until the form's owner confirms): ``{"event_id", "event_type":
"registration.submitted", "occurred_at", "form_id", "data": {"id", "submitted_at", "form_version",
"first_name", "last_name", "email", "phone", "date_of_birth" (YYYY-MM-DD or null), "country" (ISO 3166
alpha-2), "consent": {"marketing": true|false|null, "parental": "none"|"pending"|"verified"|null,
"parental_method", "guardian_name", "receipt_id"}}}``. Its stream ``registration.submissions`` (a
push-only spec in ``cdp/sources/registration/specs.py``) lands the person and the consent statements by the Moodle
registration rules: marketing is fundraising consent, parental is parental consent for course messages.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cdp.sources import typeform
from cdp.sources.base import parse_timestamp

# The primary key of the record inside each sender's payload (the stream's primary_key).
RECORD_KEYS = {"typeform": "response_id", "zigpoll": "_id", "registration": "id"}


class PayloadError(ValueError):
    """The JSON is well formed but lacks what identifies the event."""


class UnstorableBody(ValueError):
    """A body PostgreSQL cannot hold as JSON: not UTF-8, not JSON, or JSON that jsonb refuses.

    The message says why and never quotes the body (it is logged and shown to the sender)."""


def _refuse_constant(name: str) -> Any:
    raise UnstorableBody(f"the JSON holds {name}, which jsonb cannot store")


def parse_body(body: bytes) -> Any:
    """The body as JSON that ``jsonb`` will take, or ``UnstorableBody``.

    Python's json module accepts what PostgreSQL refuses: ``\\u0000`` in a string (jsonb and text hold no
    NUL), lone UTF-16 surrogates, NaN and Infinity, and floats that overflow to infinity; each would fail
    the insert, which the sender would see as a 5xx and retry forever.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UnstorableBody(f"the body is not UTF-8 (byte {error.start})") from None
    try:
        payload = json.loads(text, parse_constant=_refuse_constant)
    except UnstorableBody:
        raise
    except RecursionError:
        raise UnstorableBody("the JSON is nested too deeply") from None
    except json.JSONDecodeError as error:
        raise UnstorableBody(
            f"malformed JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except ValueError:  # e.g. an integer longer than Python converts (sys.get_int_max_str_digits)
        raise UnstorableBody("the JSON holds a number too long to read") from None
    pending = [payload]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str):
            if "\x00" in value:
                raise UnstorableBody("a string holds \\u0000, which PostgreSQL cannot store in jsonb")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise UnstorableBody("a string holds an unpaired UTF-16 surrogate") from None
        elif isinstance(value, float) and not math.isfinite(value):
            raise UnstorableBody("the JSON holds a number out of range")
    return payload


@dataclass(frozen=True)
class Event:
    event_id: str
    form_id: str
    record_id: str | None
    event_time: datetime | None


def _text(value: Any, what: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise PayloadError(f"missing {what}")
    if not isinstance(value, str | int):
        raise PayloadError(f"{what} is not a string")
    return str(value)


def _time(value: Any, what: str) -> datetime | None:
    try:
        return parse_timestamp(value)
    except (TypeError, ValueError) as error:
        raise PayloadError(f"{what} is not a timestamp") from error


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"missing {what} object")
    return value


def event_of(source: str, payload: Any) -> Event:
    payload = _object(payload, "JSON")
    if source == "typeform":
        response = _object(payload.get("form_response"), "form_response")
        return Event(
            _text(payload.get("event_id"), "event_id"),
            _text(response.get("form_id"), "form_response.form_id"),
            _text(response.get("token"), "form_response.token"),
            _time(response.get("submitted_at"), "form_response.submitted_at"),
        )
    data = _object(payload.get("data"), "data")
    if source == "zigpoll":
        return Event(
            _text(payload.get("id"), "id"),
            _text(data.get("pollId"), "data.pollId"),
            _text(data.get("_id"), "data._id"),
            _time(payload.get("createdAt"), "createdAt"),
        )
    return Event(
        _text(payload.get("event_id"), "event_id"),
        _text(payload.get("form_id"), "form_id"),
        _text(data.get("id"), "data.id"),
        _time(payload.get("occurred_at"), "occurred_at"),
    )


def record_of(source: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The record a polling read of the same source would have returned."""
    if source == "typeform":
        response = typeform.as_response(payload["form_response"])
        response.pop("definition", None)
        return response
    return dict(payload["data"])
