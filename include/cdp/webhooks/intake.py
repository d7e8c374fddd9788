"""One webhook request in, one answer out: check, land (before answering), keep, or reject with a reason.

Nothing of a body is stored before its signature verifies. A refused request adds one to a counter row per
source, hour, status and reason (``ops.webhook_rejection_count``); only the first
``KEEP_REJECTIONS_PER_HOUR`` of each counter row also get a detail row in ``ops.webhook_rejection`` (size and
sha256, never the body), so a flood of unsigned posts writes a bounded number of rows. An unknown source
name is refused without touching the warehouse. A signed body PostgreSQL cannot hold as JSON is kept byte
for byte in ``ops.webhook_undeliverable`` and answered 200, so the sender stops retrying.
"""

from __future__ import annotations

import hashlib
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
# Detail rows kept per source, hour, status and reason; beyond them a rejection is only counted.
KEEP_REJECTIONS_PER_HOUR = 10
CONTENT_TYPE_CHARS = 100  # what is kept of a request's Content-Type header (the sender chooses it)

LAND = (
    "WITH claim AS ("
    " INSERT INTO ops.webhook_event (source, event_id, form_id, stream, record_id, event_time)"
    " VALUES (%(source)s, %(event_id)s, %(form_id)s, %(stream)s, %(record_id)s, %(event_time)s)"
    " ON CONFLICT (source, event_id) DO NOTHING RETURNING source, event_id)"
    " INSERT INTO raw.records (source, stream, source_record_id, run_id, payload)"
    " SELECT source, 'webhook', event_id, %(run_id)s, %(payload)s FROM claim RETURNING raw_id"
)
# One statement: the counter row's lock orders concurrent rejections, so ``requests`` numbers them exactly
# and no more than KEEP_REJECTIONS_PER_HOUR detail rows are written per counter row, however many arrive.
REJECT = (
    "WITH counted AS ("
    " INSERT INTO ops.webhook_rejection_count AS c (source, hour, status_code, reason, body_bytes)"
    " VALUES (%(source)s, %(hour)s, %(status)s, %(code)s, %(size)s)"
    " ON CONFLICT (source, hour, status_code, reason) DO UPDATE"
    " SET requests = c.requests + 1, body_bytes = c.body_bytes + excluded.body_bytes, last_at = now()"
    " RETURNING requests),"
    " detail AS ("
    " INSERT INTO ops.webhook_rejection (source, status_code, reason, content_type, body_bytes, body_sha256)"
    " SELECT %(source)s, %(status)s, %(reason)s, %(content_type)s, %(size)s, %(sha256)s FROM counted"
    " WHERE counted.requests <= %(keep)s)"
    " SELECT requests FROM counted"
)
KEEP = (
    "INSERT INTO ops.webhook_undeliverable AS u (source, reason, content_type, body, body_bytes, body_sha256)"
    " VALUES (%(source)s, %(reason)s, %(content_type)s, %(body)s, %(size)s, %(sha256)s)"
    " ON CONFLICT (source, body_sha256) DO UPDATE"
    " SET deliveries = u.deliveries + 1, last_received_at = now()"
    " RETURNING undeliverable_id, deliveries"
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
    kept: int = 0
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

    def known(self, source: str) -> bool:
        return source in self.settings.sources

    def receive(
        self, source: str, headers: Mapping[str, str], body: bytes, *, truncated: bool = False
    ) -> Outcome:
        """Never raises for bad input: every refusal is an Outcome. ``truncated``: the reader stopped early."""
        headers = {name.lower(): value for name, value in headers.items()}
        config = self.settings.sources.get(source)
        if config is None:
            # Not stored, not logged by name: anyone can invent names, and each would be a new row.
            return self._refuse_unknown_source()
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type != "application/json":
            return self._reject(
                source, 415, "content_type", "content type must be application/json", headers, body
            )
        if truncated or len(body) > self.settings.max_body_bytes:
            declared = headers.get("content-length", "")
            size = int(declared) if declared.isdigit() else len(body)
            return self._reject(
                source, 413, "too_large", f"body over {self.settings.max_body_bytes} bytes", headers, body,
                size=size,
            )  # fmt: skip
        try:
            signed_at = signatures.verify(source, config.secret, headers, body)
        except signatures.SignatureError as error:
            return self._reject(source, 401, "bad_signature", f"bad signature: {error}", headers, body)
        # From here on the sender is who it says (or replays what it sent).
        if source != "typeform":  # the signed timestamp needs no body: check it before keeping anything
            stale = self._stale(source, signed_at, None)
            if stale:
                return self._reject(source, 400, "replay", stale, headers, body)
        try:
            payload = formats.parse_body(body)
        except formats.UnstorableBody as error:
            return self._keep(source, str(error), headers, body)
        try:
            event = formats.event_of(source, payload)
        except formats.PayloadError as error:
            return self._reject(
                source, 422, "malformed_payload", f"malformed payload: {error}", headers, body
            )
        if source == "typeform":
            stale = self._stale(source, signed_at, event.event_time)
            if stale:
                return self._reject(source, 400, "replay", stale, headers, body)
        route = config.forms.get(event.form_id)
        if route is None:
            form = event.form_id if len(event.form_id) <= 64 else event.form_id[:64] + "…"
            return self._reject(source, 404, "unknown_form", f"unknown form {form!r}", headers, body)
        try:
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
        except psycopg.DataError as error:  # a value jsonb or a column refuses: the content, not an outage
            return self._keep(
                source, f"the warehouse refused the payload (SQLSTATE {error.sqlstate})", headers, body
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

    def _refuse_unknown_source(self) -> Outcome:
        self.counters.rejected[404] = self.counters.rejected.get(404, 0) + 1
        return Outcome(404, {"error": "unknown webhook source"})

    def _keep(self, source: str, reason: str, headers: Mapping[str, str], body: bytes) -> Outcome:
        """A signed body that cannot be landed as JSON: kept as bytes and acknowledged, so not re-sent."""
        (row,) = self._execute(
            KEEP,
            {
                "source": source,
                "reason": reason,
                "content_type": headers.get("content-type", "")[:CONTENT_TYPE_CHARS] or None,
                "body": body,
                "size": len(body),
                "sha256": hashlib.sha256(body).hexdigest(),
            },
        )
        self.counters.kept += 1
        log.warning(
            "webhook %s: a signed delivery of %d bytes cannot be held as JSON (%s); kept as"
            " ops.webhook_undeliverable %d (delivery %d)",
            source, len(body), reason, row["undeliverable_id"], row["deliveries"],
        )  # fmt: skip
        return Outcome(200, {"status": "kept", "reason": reason})

    def _reject(
        self,
        source: str,
        status: int,
        code: str,
        reason: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        size: int | None = None,
    ) -> Outcome:
        """Count the refusal; ``size`` is given for an oversized body (the digest is of what was read).

        ``code`` is the counter's key (a fixed word), ``reason`` the detail the sender and the detail row get.
        """
        self.counters.rejected[status] = self.counters.rejected.get(status, 0) + 1
        size = len(body) if size is None else size
        now = datetime.fromtimestamp(self.clock(), UTC)
        (counted,) = self._execute(
            REJECT,
            {
                "source": source,
                "hour": now.replace(minute=0, second=0, microsecond=0),
                "status": status,
                "code": code,
                "reason": reason,
                "content_type": headers.get("content-type", "")[:CONTENT_TYPE_CHARS] or None,
                "size": size,
                "sha256": hashlib.sha256(body).hexdigest(),
                "keep": KEEP_REJECTIONS_PER_HOUR,
            },
        )
        requests = int(counted["requests"])
        if _worth_logging(requests):  # the 1st, 10th, 100th, … of the hour: a flood does not flood the log
            log.warning(
                "webhook %s refused with %d: %s (%d bytes; %d such this hour)",
                source,
                status,
                reason,
                size,
                requests,
            )
        return Outcome(status, {"error": reason})


def _worth_logging(count: int) -> bool:
    while count % 10 == 0:
        count //= 10
    return count == 1
