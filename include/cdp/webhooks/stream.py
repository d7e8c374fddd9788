"""Landed webhook payloads, fed through the sync engine like any source stream.

``PendingWebhookStream`` reads the events of one source and stream that are landed and not yet
processed, and hands on the record inside each (in the polling API's shape, ``formats.record_of``), so
the survey stream's own spec and SQL map it into ``core``: one mapping for polled and pushed records.
It runs under its own stream key (``<stream>_webhook``): the polling stream's watermark must never move
because a webhook arrived, or the catch-up would skip what the webhooks missed.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from cdp.quality.data_alerts import AlertOutcome, Finding, alert_once
from cdp.sync.engine import SyncResult, sync_stream
from cdp.sync.specs import StreamSpec
from cdp.warehouse import Actor, connect, transaction
from cdp.webhooks import formats

log = logging.getLogger(__name__)

PENDING = (
    "SELECT w.event_id, r.payload FROM ops.webhook_event w"
    " JOIN raw.records r ON r.source = w.source AND r.stream = 'webhook' AND r.source_record_id = w.event_id"
    " WHERE w.source = %s AND w.stream = %s AND w.processed_at IS NULL"
    " ORDER BY w.received_at, w.event_id LIMIT %s"
)


class PendingWebhookStream:
    cursor_field = None

    def __init__(
        self, url: str, source: str, stream: str, *, limit: int = 50_000, page_size: int = 1000
    ) -> None:
        self.url = url
        self.source = source
        self.stream = stream
        self.name = f"{stream}_webhook"
        self.primary_key = formats.RECORD_KEYS[source]
        self.limit = limit
        self.page_size = page_size
        self.event_ids: list[str] = []

    def read(self, since: datetime | None, until: datetime | None) -> Iterator[list[dict]]:
        """Every pending event (the window does not apply: pending is the cursor)."""
        self.event_ids = []
        with connect(self.url, Actor("webhook-processing")) as conn:
            rows = conn.execute(PENDING, (self.source, self.stream, self.limit)).fetchall()
        for start in range(0, len(rows), self.page_size):
            page = rows[start : start + self.page_size]
            self.event_ids.extend(row["event_id"] for row in page)
            yield [formats.record_of(self.source, row["payload"]) for row in page]

    def count(self, since: datetime, until: datetime) -> int:
        with connect(self.url, Actor("webhook-processing")) as conn:
            row = conn.execute(
                "SELECT count(*) AS n FROM ops.webhook_event WHERE source = %s AND stream = %s"
                " AND processed_at IS NULL",
                (self.source, self.stream),
            ).fetchone()
        return int(row["n"])


def webhook_spec(spec: StreamSpec) -> StreamSpec:
    """The polling spec under the webhook stream's own key (own watermark, own sync_run rows)."""
    return dataclasses.replace(spec, stream=f"{spec.stream}_webhook")


def process_pending(
    url: str, spec: StreamSpec, *, actor: Actor, run_id: str, now: datetime | None = None
) -> SyncResult:
    """Map every pending event of the spec's source and stream into core, then mark them processed.

    Marking is a second transaction: if it is lost, the next run maps the same events again, which the
    upserts make harmless (and raw keeps one copy of each identical record).
    """
    stream = PendingWebhookStream(url, spec.source, spec.stream)
    result = sync_stream(
        url, stream, webhook_spec(spec), actor=actor, run_id=run_id, interval_end=now or datetime.now(UTC)
    )
    with transaction(url, actor) as conn:
        marked = conn.execute(
            "UPDATE ops.webhook_event SET processed_at = now(), processed_run_id = %s"
            " WHERE source = %s AND event_id = ANY(%s) AND processed_at IS NULL",
            (run_id, spec.source, stream.event_ids),
        ).rowcount
    log.info("%s webhooks: %d events processed, %d marked", spec.key, result.rows_read, marked)
    return result


def backlog(url: str, older_than_seconds: int = 3600) -> dict[str, int]:
    """Pending events per source.stream older than the threshold (events nothing is processing)."""
    with connect(url, Actor("webhook-processing")) as conn:
        rows = conn.execute(
            "SELECT source || '.' || stream AS key, count(*) AS n FROM ops.webhook_event"
            " WHERE processed_at IS NULL AND received_at < now() - make_interval(secs => %s)"
            " GROUP BY 1 ORDER BY 1",
            (older_than_seconds,),
        ).fetchall()
    return {row["key"]: int(row["n"]) for row in rows}


class WebhookBacklog(RuntimeError):
    """Landed webhook events have waited too long: their stream has no spec, or processing fails."""


def check_backlog(url: str, older_than_seconds: int = 3600) -> dict[str, int]:
    waiting = backlog(url, older_than_seconds)
    if waiting:
        raise WebhookBacklog(
            f"webhook events pending for over {older_than_seconds} s: "
            + ", ".join(f"{key} {n}" for key, n in waiting.items())
        )
    return waiting


UNDELIVERABLE_SCOPE = "webhook_undeliverable:"
OPEN_UNDELIVERABLE = (
    "SELECT source, count(*) AS deliveries, min(received_at) AS oldest, max(undeliverable_id) AS newest,"
    " string_agg(DISTINCT reason, '; ' ORDER BY reason) AS reasons"
    " FROM ops.webhook_undeliverable WHERE resolved_at IS NULL GROUP BY source ORDER BY source"
)


def undeliverable_findings(url: str) -> list[Finding]:
    """One finding per source with signed deliveries kept undeliverable and not yet resolved (no body)."""
    with connect(url, Actor("webhook-processing")) as conn:
        rows = conn.execute(OPEN_UNDELIVERABLE).fetchall()
    findings = []
    for row in rows:
        n = int(row["deliveries"])
        findings.append(
            Finding(
                f"webhook_undeliverable:{row['source']}",
                f"{n}|{row['newest']}",
                f"*{row['source']}*: {n} signed deliver{'y' if n == 1 else 'ies'} since "
                f"{row['oldest']:%Y-%m-%d %H:%M} UTC acknowledged but not landed (the body cannot be held as "
                f"JSON: {row['reasons'][:300]}); the bytes wait in ops.webhook_undeliverable."
                "\n  repair: read them as cdp_admin, re-send the corrected event or ask the sender, then set "
                "resolved_at and resolution (see the README runbook)",
            )
        )
    return findings


def alert_undeliverable(url: str, *, run_id: str, send: Callable[[str], None], actor: Actor) -> AlertOutcome:
    """The ``webhook_undeliverable`` data alert: sent when deliveries are kept, again when more come, and
    once as cleared when all are resolved."""
    return alert_once(
        url,
        scope=UNDELIVERABLE_SCOPE,
        title="Webhook deliveries kept undeliverable",
        run_id=run_id,
        findings=undeliverable_findings(url),
        send=send,
        actor=actor,
    )
