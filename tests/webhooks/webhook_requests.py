"""Signed webhook requests as the senders make them (Typeform, Zigpoll, the registration form)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from cdp.webhooks import signatures
from cdp.webhooks.config import FormRoute, SourceConfig, WebhookSettings

SECRETS = {
    source: f"{source}-signing-secret-0123456789" for source in ("typeform", "zigpoll", "registration")
}
TYPEFORM_FORM = "kDnP4xQe"
ZIGPOLL_POLL = "64a1f0c2e4b0a1b2c3d4e5f7"
REGISTRATION_FORM = "learner-registration"


def settings(max_body_bytes: int = 64 * 1024) -> WebhookSettings:
    return WebhookSettings(
        {
            "typeform": SourceConfig(
                "typeform", SECRETS["typeform"], {TYPEFORM_FORM: FormRoute(TYPEFORM_FORM, "responses")}
            ),
            "zigpoll": SourceConfig(
                "zigpoll", SECRETS["zigpoll"], {ZIGPOLL_POLL: FormRoute(ZIGPOLL_POLL, "responses")}
            ),
            "registration": SourceConfig(
                "registration", SECRETS["registration"],
                {REGISTRATION_FORM: FormRoute(REGISTRATION_FORM, "submissions")},
            ),
        },
        max_body_bytes=max_body_bytes,
    )  # fmt: skip


def iso(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def typeform_payload(
    event_id: str | None = None, *, form_id: str = TYPEFORM_FORM, submitted_at: str | None = None
) -> dict[str, Any]:
    token = uuid.uuid4().hex[:20]
    return {
        "event_id": event_id or uuid.uuid4().hex.upper()[:26],
        "event_type": "form_response",
        "form_response": {
            "form_id": form_id, "token": token, "landed_at": submitted_at or iso(),
            "submitted_at": submitted_at or iso(),
            "hidden": {"learner_id": "42"}, "definition": {"id": form_id, "title": "Course feedback"},
            "answers": [{"field": {"id": "Q1rating", "type": "opinion_scale", "ref": "skills_improved"},
                         "type": "number", "number": 9}],
        },
    }  # fmt: skip


def zigpoll_payload(
    event_id: str | None = None,
    *,
    poll_id: str = ZIGPOLL_POLL,
    metadata: dict | None = None,
    response_id: str | None = None,
) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:16]}",
        "type": "response.created",
        "createdAt": iso(),
        "data": {
            "_id": response_id or uuid.uuid4().hex[:24], "createdAt": iso(), "pollId": poll_id,
            "participantId": uuid.uuid4().hex[:24], "response": "9 - Excellent", "slideType": "rating",
            "metadata": {"course": "python"} if metadata is None else metadata,
        },
    }  # fmt: skip


def signed(
    source: str, payload: Any, *, timestamp: int | None = None, secret: str | None = None
) -> tuple[bytes, dict]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = signatures.sign(source, secret or SECRETS[source], body, timestamp or int(time.time()))
    return body, {"Content-Type": "application/json", **headers}


def registration_payload(
    *,
    email: str,
    born: str | None,
    country: str = "US",
    marketing: bool | None = True,
    parental: str | None = None,
    submission_id: str | None = None,
    submitted_at: str | None = None,
    first_name: str = "Robin",
) -> dict[str, Any]:
    """A registration-form submission in the shape the form sends (cdp.webhooks.formats)."""
    consent: dict[str, Any] = {"marketing": marketing, "receipt_id": f"rcpt-{uuid.uuid4().hex[:8]}"}
    if parental is not None:
        consent |= {
            "parental": parental,
            "parental_method": "signed consent form",
            "guardian_name": "Pat Guardian",
        }
    moment = submitted_at or iso()
    return {
        "event_id": f"reg-{uuid.uuid4().hex[:12]}",
        "event_type": "registration.submitted",
        "occurred_at": moment,
        "form_id": REGISTRATION_FORM,
        "data": {
            "id": submission_id or f"sub-{uuid.uuid4().hex[:12]}", "submitted_at": moment, "form_version": "2026-09",
            "first_name": first_name, "last_name": "Learner", "email": email, "phone": None,
            "date_of_birth": born, "country": country, "consent": consent,
        },
    }  # fmt: skip
