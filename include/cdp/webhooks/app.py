"""The FastAPI app the Airflow API server serves (see ``plugins/cdp_webhooks.py``); runnable alone too.

``POST /{source}`` with ``source`` one of ``typeform``, ``zigpoll``, ``registration`` (a source not
configured is refused before its body is read). The body is read up to the size limit and no further. The
answer is sent only after the payload is committed to ``raw``; the Asset event that wakes the pipeline is
emitted afterwards, coalesced (one event per burst), so a slow or failing metadata database never delays or
fails an acknowledgement: the processing DAG also runs on a timer and reads every pending event.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from cdp.webhooks.intake import Intake, Outcome

log = logging.getLogger(__name__)


class CoalescingNotifier:
    """Calls ``emit(n)`` at most once per ``interval`` seconds with the number of events landed since."""

    def __init__(self, emit: Callable[[int], None], interval: float = 1.0) -> None:
        self.emit = emit
        self.interval = interval
        self.pending = 0
        self.emitted = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def notify(self) -> None:
        with self._lock:
            self.pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="webhook-asset-events", daemon=True)
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            threading.Event().wait(self.interval)
            with self._lock:
                count, self.pending = self.pending, 0
            if not count:
                continue
            try:
                self.emit(count)
                self.emitted += 1
            except Exception:  # the timer run of the DAG still picks the events up
                log.exception("could not emit the webhook Asset event for %d landed events", count)


def create_app(
    intake_factory: Callable[[], Intake],
    notifier: CoalescingNotifier | None = None,
    *,
    max_body_bytes: int | None = None,
) -> FastAPI:
    """``intake_factory`` runs at the first request, not at import (no I/O when the plugin loads)."""
    app = FastAPI(title="CDP webhook intake", docs_url=None, redoc_url=None)
    state: dict[str, Intake] = {}
    lock = threading.Lock()

    def intake() -> Intake:
        with lock:
            if "intake" not in state:
                state["intake"] = intake_factory()
            return state["intake"]

    async def read_limited(request: Request, limit: int) -> tuple[bytes, bool]:
        """The body, or (when longer than ``limit``) what was read before stopping, and whether it stopped."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            return b"", True
        chunks, size = [], 0
        async for chunk in request.stream():
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                return b"".join(chunks), True
        return b"".join(chunks), False

    def answer(outcome: Outcome) -> JSONResponse:
        return JSONResponse(outcome.body, status_code=outcome.status)

    @app.post("/{source}")
    async def receive(source: str, request: Request) -> JSONResponse:
        from starlette.concurrency import run_in_threadpool

        current = await run_in_threadpool(intake)
        if not current.known(source):  # refused before a byte of the body is read
            return answer(current.receive(source, {}, b""))
        limit = max_body_bytes or current.settings.max_body_bytes
        body, truncated = await read_limited(request, limit)
        try:
            outcome = await run_in_threadpool(
                current.receive, source, dict(request.headers), body, truncated=truncated
            )
        except (psycopg.Error, sqlalchemy.exc.TimeoutError) as error:  # down, or every connection busy
            # A server error's text is not logged: PostgreSQL quotes the JSON it choked on (CONTEXT line).
            # A connection that failed or a pool that is full says nothing of the body, and says why.
            sqlstate = getattr(error, "sqlstate", None)
            client_side = isinstance(error, psycopg.OperationalError | sqlalchemy.exc.TimeoutError)
            why = str(error).splitlines()[0][:200] if client_side and not sqlstate else ""
            log.error(
                "webhook %s: the warehouse did not take the event (%s, SQLSTATE %s) %s",
                source,
                type(error).__name__,
                sqlstate,
                why,
            )
            return JSONResponse({"error": "warehouse unavailable, retry later"}, status_code=503)
        if outcome.landed and notifier is not None:
            notifier.notify()
        return answer(outcome)

    @app.get("/health")
    async def health() -> dict[str, object]:
        counters = state["intake"].counters if "intake" in state else None
        return {
            "ready": counters is not None,
            "accepted": counters.accepted if counters else 0,
            "duplicates": counters.duplicates if counters else 0,
            "kept_undeliverable": counters.kept if counters else 0,
            "rejected": dict(counters.rejected) if counters else {},
        }

    return app
