"""The plumbing every vendor API of the sandbox shares: requests, responses, paged listings, faults.

Each vendor's API lives in its own module (``moodle``, ``salesforce``, ``stripe``, ``typeform``,
``zigpoll``, ``referralhero``, ``volunteers`` for Galaxy, ``zendesk``, ``certificates``), next to the data it
serves; ``cdp_sandbox.vendors`` registers them, and ``VendorApis`` routes a request to the one it names.
Where a vendor's error body for a case is not documented (Zigpoll and ReferralHero auth errors,
Typeform's 429 body), the shape used is marked "assumed" next to it.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import numpy as np
import orjson

from cdp_sandbox.core import WorldCore
from cdp_sandbox.faults import Fault, FaultBook
from cdp_sandbox.formats import to_epoch
from cdp_sandbox.tables import Table


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def form(self) -> dict[str, list[str]]:
        merged = dict(self.query)
        if self.body and "application/x-www-form-urlencoded" in self.headers.get("content-type", ""):
            for key, values in parse_qs(self.body.decode(), keep_blank_values=True).items():
                merged.setdefault(key, []).extend(values)
        return merged


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-able, or bytes/str for raw bodies
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return orjson.dumps(self.body, option=orjson.OPT_NON_STR_KEYS)


class Listing:
    """Applies the stream's data faults (drops, skipped pages, renames, edits) to what a page serves."""

    def __init__(
        self, world: WorldCore, faults: FaultBook, lock: threading.RLock, source: str, stream: str
    ) -> None:
        self.world, self.faults, self.lock = world, faults, lock
        self.source, self.stream = source, stream
        self.table = world.table(source, stream)
        self.excluded = dropped_rows(faults, self.table, source, stream)
        self.deleted = dropped_rows(faults, self.table, source, stream, kinds=("delete_records",))

    def count(self, since: int | None, until: int | None) -> int:
        """What the vendor's count reports for [since, until): every record but those deleted in the tool
        (a dropped record is still counted: the vendor lost it on the way, it did not forget it)."""
        times = self.table.times()
        gone = sum(
            1 for row in self.deleted
            if (since is None or times[row] >= since) and (until is None or times[row] < until)
        )  # fmt: skip
        return self.table.count(since, until) - gone

    def page(
        self,
        since: int | None,
        until: int | None,
        limit: int,
        *,
        after: tuple[int, int] | None = None,
        descending: bool = False,
    ) -> tuple[list[int], bool]:
        with self.lock:
            if after is not None and self.faults.take(self.source, self.stream, ("drop_page",)):
                skipped, _ = self.table.page(
                    since, until, limit, after=after, descending=descending, exclude=self.excluded
                )
                if skipped:  # the page asked for is silently replaced by the one after it
                    after = self.key(skipped[-1])
            rows, more = self.table.page(
                since, until, limit, after=after, descending=descending, exclude=self.excluded
            )
            for fault in self.faults.take(self.source, self.stream, ("edit_during_sync",)):
                if rows:
                    ahead, _ = self.table.page(
                        since,
                        until,
                        max(fault.count, 1) * 3,
                        after=self.key(rows[-1]),
                        descending=descending,
                        exclude=self.excluded,
                    )
                    edited = ahead[::3][: max(fault.count, 1)]
                    self.table.touch(edited, self.world.edit_time() + fault.hits)
                    fault.affected_ids.extend(self.table.id_of(i) for i in edited)
        return rows, more

    def key(self, row: int) -> tuple[int, int]:
        return int(self.table.times()[row]), row

    def renames(self) -> list[tuple[str, str]]:
        return [
            (f.field, f.renamed_to)
            for f in self.faults.list()
            if f.kind == "rename_field" and f.matches(self.source, self.stream)
        ]

    def encoded(self, rows: list[int]) -> list[Any]:
        """The records as JSON fragments ready to embed in a response (cached per row, as a real API serves)."""
        if self.renames():
            return self.render(rows)
        return [orjson.Fragment(self.table.rendered(row)) for row in rows]

    def render(self, rows: list[int]) -> list[dict[str, Any]]:
        renames = self.renames()
        records = [self.table.builder(row) for row in rows]
        for old, new in renames:
            for record in records:
                if old in record:
                    record[new] = record.pop(old)
        return records


def dropped_rows(
    faults: FaultBook,
    table: Table,
    source: str,
    stream: str,
    kinds: tuple[str, ...] = ("drop_records", "delete_records"),
) -> frozenset[int]:
    """Rows hidden by drop_records (and delete_records) faults; chosen once per fault, evenly across its
    window."""
    rows: set[int] = set()
    for fault in faults.list():
        if fault.kind not in kinds or not fault.matches(source, stream):
            continue
        if not fault.affected_ids:
            window = table.window(to_epoch(fault.since), to_epoch(fault.until))
            count = min(fault.count, window.shape[0])
            picked = (
                window[np.linspace(0, window.shape[0] - 1, count).astype(np.int64)] if count else window[:0]
            )
            fault.affected_ids = [table.id_of(int(i)) for i in np.unique(picked)]
        rows.update(int(table.index_of(rid)) for rid in fault.affected_ids)
    return frozenset(rows)


def now() -> int:
    return int(time.time())


def parse_time(text: str | None) -> int | None:
    """Unix seconds or ISO 8601 (with Z or offset)."""
    if text is None or text == "":
        return None
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def encode_cursor(*parts: int) -> str:
    return base64.urlsafe_b64encode(":".join(map(str, parts)).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> list[int]:
    padded = text + "=" * (-len(text) % 4)
    return [int(p) for p in base64.urlsafe_b64decode(padded.encode()).decode().split(":")]


#: A vendor's API as the router calls it: one request in, the vendor's answer out.
Handler = Callable[["Request"], "Response"]


class VendorApis:
    """Routes one request to its vendor and answers it as the vendor would.

    ``vendors`` maps each mount to the factory of its API (``cdp_sandbox.vendors.api_factories()``); a factory
    gets this object (the world, the faults, the lock every request thread shares) and returns the handler,
    which keeps the vendor's own state (query locators, records written, rewards sent, …).
    """

    def __init__(
        self, world: WorldCore, faults: FaultBook, vendors: Mapping[str, Callable[[VendorApis], Handler]]
    ) -> None:
        self.world = world
        self.faults = faults
        self.lock = threading.RLock()
        self.api_calls: dict[str, int] = {}
        self.handlers: dict[str, Handler] = {name: factory(self) for name, factory in vendors.items()}

    def handle(self, source: str, request: Request) -> Response:
        handler = self.handlers[source]
        self.api_calls[source] = self.api_calls.get(source, 0) + 1
        return handler(request)

    def request_faults(
        self, source: str, stream: str | None, errors: dict[str, Callable[[Fault], Response]]
    ) -> Response | None:
        """Apply request-level faults; return the vendor's error response if one fires."""
        for fault in self.faults.request_faults(source, stream):
            if fault.kind == "slow":
                time.sleep(fault.delay)
            elif fault.kind in errors:
                return errors[fault.kind](fault)
        return None

    def listing(self, source: str, stream: str) -> Listing:
        return Listing(self.world, self.faults, self.lock, source, stream)

    # The state of the fakes that record what they were sent, as the tests and the admin API read it.
    @property
    def salesforce_writes(self) -> Any:
        return self.handlers["salesforce"].writes  # type: ignore[attr-defined]

    @property
    def reward_desk(self) -> Any:
        return self.handlers["referralhero"].reward_desk  # type: ignore[attr-defined]

    @property
    def certificate_service(self) -> Any:
        return self.handlers["certificates"].service  # type: ignore[attr-defined]
