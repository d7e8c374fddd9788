"""Sync one source stream into the warehouse, in one transaction.

For a stream and a window: read pages from the source; copy each page into a temporary batch table with
each record's validation result; run the stream's SQL to move valid records into ``core`` (marking
records whose references do not resolve); then append every payload to ``raw.records``, every rejected
record to ``ops.quarantine``, the counts to ``ops.sync_run``, one audit event, and the new watermark.
Records still waiting in the quarantine that now pass validation (typically orphans whose parent has
since arrived) are re-tried with the batch; once one lands, its quarantine rows are marked resolved.
All of it commits together or not at all: a task killed half-way leaves nothing behind and its
watermark where it was.

The read window starts an overlap before the watermark, so a record modified right at the boundary, or
committed late at the source, is read again; the upsert makes re-reading harmless.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from queue import Empty, Full, Queue
from typing import Any

import orjson
import psycopg
import sqlparse
from psycopg.types.json import Jsonb

from cdp import audit
from cdp.paths import SQL_DIR
from cdp.sources.base import Stream
from cdp.sources.spec import RESOLVE_PEOPLE, SOURCES_DIR, StreamSpec
from cdp.sources.validation import split
from cdp.warehouse import Actor, transaction

log = logging.getLogger(__name__)

DEFAULT_OVERLAP = timedelta(minutes=30)
SYNC_SQL_DIR = SQL_DIR / "sync"  # the engine's shared SQL, named with a leading "_" in a spec's transforms


@dataclass(frozen=True)
class SyncResult:
    source: str
    stream: str
    window_start: datetime | None
    window_end: datetime
    rows_read: int
    rows_landed: int
    rows_upserted: int
    rows_quarantined: int
    seconds: float
    rows_replayed: int = 0  # quarantined earlier, re-tried now, and landed

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["window_start"] = self.window_start.isoformat() if self.window_start else None
        values["window_end"] = self.window_end.isoformat()
        return values


def sql_path(spec: StreamSpec, name: str) -> Path:
    """Where a transform of ``spec`` lives: ``_name.sql`` is the engine's shared SQL (sql/sync/), any
    other name is in the stream's source folder (cdp/sources/<source>/sql/)."""
    if name.startswith("_"):
        return SYNC_SQL_DIR / name
    return SOURCES_DIR / spec.source / "sql" / name


def _statements(path: Path) -> list[str]:
    text = path.read_text()
    return [
        statement
        for statement in sqlparse.split(text)
        if sqlparse.format(statement, strip_comments=True).strip()
    ]


def lock_people(conn: psycopg.Connection) -> None:
    """Serialise person resolution across every writer that can create people, to the transaction's end.

    Exact-key resolution reads ``core.person`` and inserts who it does not find; two transactions resolving
    the same human at once (two people streams, a webhook and a sync, the legacy load and a sync) would each
    see no match and each make a person. Taken after landing, which writes no audited row, and before the
    first core write, so it always comes before the audit trail's own lock and cannot deadlock with it.
    """
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('cdp.people'))")


def read_window(
    watermark: datetime | None, interval_start: datetime | None, interval_end: datetime, overlap: timedelta
) -> tuple[datetime | None, datetime]:
    """[since, until): from the earlier of watermark and interval start, less the overlap, to the interval end.

    A first sync (no watermark) reads everything up to the interval end; a backfill of an old interval
    reads that interval; a scheduled run catches up from the watermark however long the pause was.
    """
    if watermark is None:
        return None, interval_end
    start = min(watermark, interval_start) if interval_start else watermark
    return start - overlap, interval_end


def sync_stream(
    url: str,
    stream: Stream,
    spec: StreamSpec,
    *,
    actor: Actor,
    run_id: str,
    interval_end: datetime,
    interval_start: datetime | None = None,
    overlap: timedelta = DEFAULT_OVERLAP,
) -> SyncResult:
    started = time.monotonic()
    started_at = datetime.now(UTC)
    with transaction(url, actor) as conn:
        # One writer per stream: a second run of the same stream waits instead of interleaving.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"cdp.sync:{spec.key}",))
        row = conn.execute(
            "SELECT watermark FROM ops.sync_watermark WHERE source = %s AND stream = %s",
            (spec.source, spec.stream),
        ).fetchone()
        since, until = read_window(
            row["watermark"] if row else None, interval_start, interval_end, max(overlap, spec.lookback)
        )

        rows_read = _land_batch(conn, stream, spec, since, until)
        listing_complete = _land_listing(conn, stream)
        retried = _add_quarantined_for_replay(conn, spec, rows_read)
        if RESOLVE_PEOPLE in spec.transforms:
            lock_people(conn)
        params = {
            "source": spec.source,
            "stream": spec.stream,
            "run_id": run_id,
            "person_source": spec.person_source,
            "people_update": "overwrite",
            "listing_complete": listing_complete,
            # The end of the window read: "when the sync saw it" for a source that dates nothing itself
            # (a SurveyMonkey contact's consent), the same on every replay of the window, unlike now().
            "window_end": until,
            **dict(spec.params),
            # A connection's own options for the SQL (Stripe's metadata key for the gift id), and what the
            # connector learned while reading (a single-currency CRM org's currency).
            **dict(getattr(stream, "sql_params", {})),
        }
        api_version = getattr(stream, "api_version", None)
        for name in spec.transforms:
            for number, statement in enumerate(_statements(sql_path(spec, name)), 1):
                began = time.monotonic()
                conn.execute(statement, params)
                log.debug("%s: %s statement %d took %.3fs", spec.key, name, number, time.monotonic() - began)
        counts = conn.execute(
            "SELECT count(DISTINCT source_record_id) FILTER (WHERE reason IS NULL) AS upserted,"
            "       count(*) FILTER (WHERE reason IS NOT NULL AND NOT replayed) AS quarantined,"
            "       count(DISTINCT source_record_id) FILTER (WHERE reason IS NULL AND replayed) AS replayed"
            " FROM sync_batch"
        ).fetchone()
        # A payload identical to one already landed for the same record (the overlap window, a re-run)
        # is not landed twice: raw keeps every distinct version received, with the run that first saw it.
        landed = conn.execute(
            "INSERT INTO raw.records (source, stream, source_record_id, run_id, payload)"
            " SELECT %(source)s, %(stream)s, b.source_record_id, %(run_id)s, b.payload FROM sync_batch b"
            # `=` on the id (not IS NOT DISTINCT FROM, which no index serves) keeps this a join on the
            # index rather than a scan of every record of the stream per incoming record.
            " WHERE NOT EXISTS (SELECT 1 FROM raw.records r WHERE r.source = %(source)s AND r.stream = %(stream)s"
            "   AND r.source_record_id = b.source_record_id AND r.payload = b.payload)"
            " AND NOT (b.source_record_id IS NULL AND EXISTS (SELECT 1 FROM raw.records r WHERE r.source ="
            "   %(source)s AND r.stream = %(stream)s AND r.source_record_id IS NULL AND r.payload = b.payload))"
            " ORDER BY b.seq",
            params,
        ).rowcount
        # A record that landed now (re-tried from the quarantine, or a newer valid version from the source)
        # closes what was waiting for it; a re-tried record that still fails stays open, as it was.
        conn.execute(
            "UPDATE ops.quarantine q SET resolved_at = now(), resolution = CASE WHEN b.replayed"
            "   THEN 'replayed in run ' || %(run_id)s ELSE 'superseded by a valid version in run ' || %(run_id)s END"
            " FROM (SELECT source_record_id, bool_or(replayed) AS replayed FROM sync_batch"
            "       WHERE reason IS NULL AND source_record_id IS NOT NULL GROUP BY 1) b"
            " WHERE q.source = %(source)s AND q.stream = %(stream)s AND q.resolved_at IS NULL"
            "   AND q.source_record_id = b.source_record_id",
            params,
        )
        # Likewise a rejection already waiting in the quarantine is not queued again.
        quarantined = conn.execute(
            "INSERT INTO ops.quarantine (source, stream, source_record_id, run_id, reason, reason_value, payload)"
            " SELECT %(source)s, %(stream)s, b.source_record_id, %(run_id)s, b.reason, b.reason_value, b.payload"
            " FROM sync_batch b"
            " WHERE b.reason IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ops.quarantine q WHERE q.source = %(source)s"
            "   AND q.stream = %(stream)s AND q.resolved_at IS NULL AND q.source_record_id IS NOT DISTINCT FROM"
            "   b.source_record_id AND q.reason = b.reason AND q.payload = b.payload)"
            " ORDER BY b.seq",
            params,
        ).rowcount
        result = SyncResult(
            spec.source, spec.stream, since, until, rows_read, landed,
            int(counts["upserted"]), int(counts["quarantined"]), 0.0, int(counts["replayed"]),
        )  # fmt: skip
        log.info(
            "%s: %d payloads new to raw, %d new rejections queued, %d of %d re-tried from the quarantine landed",
            spec.key, landed, quarantined, result.rows_replayed, retried,
        )  # fmt: skip
        conn.execute(
            "INSERT INTO ops.sync_run (run_id, source, stream, window_start, window_end, started_at, rows_read,"
            " rows_landed, rows_upserted, rows_quarantined, api_version)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (run_id, source, stream, window_end) DO UPDATE SET finished_at = now(),"
            " rows_read = excluded.rows_read, rows_landed = excluded.rows_landed,"
            " rows_upserted = excluded.rows_upserted, rows_quarantined = excluded.rows_quarantined,"
            " api_version = excluded.api_version",
            (run_id, spec.source, spec.stream, since, until, started_at, rows_read, landed,
             result.rows_upserted, result.rows_quarantined, api_version),
        )  # fmt: skip
        # The watermark never moves backwards: a backfill of an old interval leaves it where it is.
        conn.execute(
            "INSERT INTO ops.sync_watermark (source, stream, watermark, run_id) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (source, stream) DO UPDATE SET watermark = greatest(ops.sync_watermark.watermark,"
            " excluded.watermark), run_id = excluded.run_id, updated_at = now()",
            (spec.source, spec.stream, until, run_id),
        )
        details = result.as_dict() | ({"api_version": api_version} if api_version else {})
        audit.record_event(conn, "import", spec.key, None, details)
    result = SyncResult(**{**asdict(result), "seconds": round(time.monotonic() - started, 3)})
    log.info(
        "synced %s: read %d, upserted %d, quarantined %d in %.1fs (window %s .. %s)",
        spec.key, result.rows_read, result.rows_upserted, result.rows_quarantined, result.seconds, since, until,
    )  # fmt: skip
    return result


def prefetched(pages: Iterator[list[dict]], depth: int = 2) -> Iterator[list[dict]]:
    """The source's pages, fetched by a background thread up to ``depth`` pages ahead.

    The source serves the next page while this thread copies the last one into Postgres; at most
    ``depth`` + 1 pages are ever held, so memory stays flat. An error in the source is raised here, in
    page order; when the consumer stops early the fetching thread stops too.
    """
    queue: Queue[tuple[str, Any]] = Queue(maxsize=depth)
    stop = threading.Event()

    def fetch() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        queue.put(("page", page), timeout=0.5)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put(("done", None))
        except BaseException as error:  # handed to the consumer, which raises it
            queue.put(("error", error))

    worker = threading.Thread(target=fetch, name="sync-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            kind, item = queue.get()
            if kind == "done":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():
            try:
                queue.get_nowait()
            except Empty:
                worker.join(timeout=0.1)


def _json(value: Any) -> bytes | str:
    """orjson where it can (several times faster than json.dumps on big payloads), json where it cannot."""
    try:
        return orjson.dumps(value)
    except TypeError:  # e.g. an integer beyond 64 bits, which JSON allows and orjson refuses
        return json.dumps(value)


def _land_batch(
    conn: psycopg.Connection, stream: Stream, spec: StreamSpec, since: datetime | None, until: datetime
) -> int:
    """Stream pages into the temp table ``sync_batch``; only one page is ever held in memory."""
    # The staging copy is read several times and dropped at commit. Stored the default way, every payload
    # over 2 kB would be compressed on the way in and fetched from TOAST and decompressed again by each
    # `payload ->> ...` of the stream's SQL; kept inline and uncompressed up to a full page, it is not.
    # raw.records keeps the compressed copy.
    conn.execute(
        "CREATE TEMP TABLE sync_batch (seq bigint PRIMARY KEY, source_record_id text,"
        " payload jsonb STORAGE EXTERNAL NOT NULL, reason text, reason_value text,"
        " replayed boolean NOT NULL DEFAULT false)"
        " WITH (toast_tuple_target = 8160) ON COMMIT DROP"
    )
    seq = 0
    # The reason names the rule and the field; the value it refused goes apart (reason_value), since staff
    # roles read the quarantine's reasons but not its payloads (validation.Rejection).
    with conn.cursor().copy(
        "COPY sync_batch (seq, source_record_id, payload, reason, reason_value) FROM STDIN"
    ) as copy:
        for page in prefetched(stream.read(since, until)):
            for record in page:
                seq += 1
                key = record.get(stream.primary_key)
                reason, reason_value = split(spec.check(record))
                copy.write_row(
                    (seq, None if key is None else str(key), Jsonb(record, _json), reason, reason_value)
                )
    conn.execute("ANALYZE sync_batch")
    return seq


def _land_listing(conn: psycopg.Connection, stream: Stream) -> bool:
    """The temp table ``source_listing``: every id the source lists now, when the read walked a complete
    listing (``stream.listed_ids``, e.g. ReferralHero, whose API shows no removals). A stream's SQL finds
    the records deleted at the source as those in core but not listed, only when this returns True."""
    conn.execute("CREATE TEMP TABLE source_listing (source_record_id text PRIMARY KEY) ON COMMIT DROP")
    listed = getattr(stream, "listed_ids", None)
    if listed is None:
        return False
    with conn.cursor().copy("COPY source_listing (source_record_id) FROM STDIN") as copy:
        for record_id in listed:
            copy.write_row((str(record_id),))
    conn.execute("ANALYZE source_listing")
    return True


def _add_quarantined_for_replay(conn: psycopg.Connection, spec: StreamSpec, after_seq: int) -> int:
    """Append to ``sync_batch`` the latest open quarantined version of each record that the source did not
    send again and that now passes validation: an orphan whose parent may have arrived since. The stream's
    SQL then treats it like any record, and marks it again if its reference still does not resolve."""
    waiting = conn.execute(
        "SELECT DISTINCT ON (q.source_record_id) q.source_record_id, q.payload FROM ops.quarantine q"
        " WHERE q.source = %s AND q.stream = %s AND q.resolved_at IS NULL AND q.source_record_id IS NOT NULL"
        "   AND NOT EXISTS (SELECT 1 FROM sync_batch b WHERE b.source_record_id = q.source_record_id)"
        " ORDER BY q.source_record_id, q.quarantine_id DESC",
        (spec.source, spec.stream),
    ).fetchall()
    retry = [
        (row["source_record_id"], row["payload"]) for row in waiting if spec.check(row["payload"]) is None
    ]
    if not retry:
        return 0
    with conn.cursor().copy("COPY sync_batch (seq, source_record_id, payload, replayed) FROM STDIN") as copy:
        for seq, (record_id, payload) in enumerate(retry, start=after_seq + 1):
            copy.write_row((seq, record_id, Jsonb(payload), True))
    conn.execute("ANALYZE sync_batch")
    return len(retry)
