"""One webhook request in, one answer out: check, land (before answering), or reject with a reason."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy.pool import QueuePool

from cdp.warehouse import Actor, connect
from cdp.webhooks import formats, signatures
from cdp.webhooks.config import WebhookSettings

log = logging.getLogger(__name__)

RUN_ID = "webhook"
ACTOR = Actor("webhook-intake")

LAND = (
    "WITH claim AS ("
    " INSERT INTO ops.webhook_event (source, event_id, form_id, stream, record_id, event_time)"
    " VALUES (%(source)s, %(event_id)s, %(form_id)s, %(stream)s, %(record_id)s, %(event_time)s)"
    " ON CONFLICT (source, event_id) DO NOTHING RETURNING source, event_id)"
    " INSERT INTO raw.records (source, stream, source_record_id, run_id, payload)"
    " SELECT source, 'webhook', event_id, %(run_id)s, %(payload)s FROM claim RETURNING raw_id"
)
REJECT = (
    "INSERT INTO ops.webhook_rejection (source, status_code, reason, content_type, body_bytes, body_sha256, body)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s)"
)


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict[str, Any]
    landed: bool = False


@dataclass
class Counters:
    accepted: int = 0
    duplicates: int = 0
    rejected: dict[int, int] = field(default_factory=dict)


class Intake:
    """Thread-safe: FastAPI runs each request in its worker pool; connections come from a bounded pool."""

    def __init__(
        self,
        url: str,
        settings: WebhookSettings,
        *,
        pool_size: int = 8,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.counters = Counters()
        self.pool = QueuePool(
            lambda: connect(url, ACTOR, autocommit=True),
            pool_size=pool_size,
            max_overflow=pool_size,
            timeout=10,
        )

    def close(self) -> None:
        self.pool.dispose()

    def _execute(self, statement: str, params: Any) -> list[tuple]:
        proxy = self.pool.connect()
        try:
            conn: psycopg.Connection = proxy.driver_connection
            cursor = conn.execute(statement, params)
            return cursor.fetchall() if cursor.description else []
        finally:
            proxy.close()

    def receive(
        self, source: str, headers: Mapping[str, str], body: bytes, *, truncated: bool = False
    ) -> Outcome:
        """Never raises for bad input: every refusal is an Outcome. ``truncated``: the reader stopped early."""
        headers = {name.lower(): value for name, value in headers.items()}
        config = self.settings.sources.get(source)
        if config is None:
            return self._reject(source, 404, f"unknown webhook source {source!r}", headers, body)
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type != "application/json":
            return self._reject(source, 415, "content type must be application/json", headers, body)
        if truncated or len(body) > self.settings.max_body_bytes:
            declared = headers.get("content-length", "")
            size = int(declared) if declared.isdigit() else len(body)
            return self._reject(
                source, 413, f"body over {self.settings.max_body_bytes} bytes", headers, body, size=size
            )
        try:
            signed_at = signatures.verify(source, config.secret, headers, body)
        except signatures.SignatureError as error:
            return self._reject(source, 401, f"bad signature: {error}", headers, body)
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            return self._reject(source, 400, f"malformed JSON: {error}", headers, body)
        try:
            event = formats.event_of(source, payload)
        except formats.PayloadError as error:
            return self._reject(source, 422, f"malformed payload: {error}", headers, body)
        stale = self._stale(source, signed_at, event.event_time)
        if stale:
            return self._reject(source, 400, stale, headers, body)
        route = config.forms.get(event.form_id)
        if route is None:
            return self._reject(source, 404, f"unknown form {event.form_id!r}", headers, body)
        landed = self._execute(
            LAND,
            {
                "source": source,
                "event_id": event.event_id,
                "form_id": event.form_id,
                "stream": route.stream,
                "record_id": event.record_id,
                "event_time": event.event_time,
                "run_id": RUN_ID,
                "payload": Jsonb(payload),
            },
        )
        if not landed:
            self.counters.duplicates += 1
            return Outcome(200, {"status": "duplicate", "event_id": event.event_id})
        self.counters.accepted += 1
        return Outcome(200, {"status": "accepted", "event_id": event.event_id}, landed=True)

    def _stale(self, source: str, signed_at: int | None, event_time: datetime | None) -> str | None:
        now = self.clock()
        if source == "typeform":
            if event_time is None:
                return "missing form_response.submitted_at"
            age = now - event_time.astimezone(UTC).timestamp()
            if age > self.settings.typeform_max_age_seconds or age < -self.settings.tolerance_seconds:
                return f"replay refused: submitted_at is {int(age)} s from now"
            return None
        if signed_at is None or abs(now - signed_at) > self.settings.tolerance_seconds:
            return f"replay refused: signature timestamp outside {self.settings.tolerance_seconds} s"
        return None

    def _reject(
        self,
        source: str,
        status: int,
        reason: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        size: int | None = None,
    ) -> Outcome:
        """``size`` given for an oversized body, which is not kept (only its size and the digest of what was read)."""
        self.counters.rejected[status] = self.counters.rejected.get(status, 0) + 1
        text = None
        if size is None:
            try:
                text = body.decode("utf-8").replace("\x00", "")
            except UnicodeDecodeError:
                text = None
        self._execute(
            REJECT,
            (
                source,
                status,
                reason,
                headers.get("content-type"),
                len(body) if size is None else size,
                hashlib.sha256(body).hexdigest(),
                text,
            ),
        )
        log.warning("webhook %s refused with %d: %s (%d bytes)", source, status, reason, size or len(body))
        return Outcome(status, {"error": reason})
