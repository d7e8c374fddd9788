"""Column-store tables behind the sandbox: numpy index columns, records built on demand.

Why: the sandbox must serve 100k-1M learners without holding a million dicts. Each
table keeps only a few compact numpy columns (timestamps, truth person, malformed
reason) and builds a record's JSON from its row index when a page asks for it.
Ordering and windows are answered from sorted views of the time columns.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BASE62_INDEX = {c: i for i, c in enumerate(BASE62)}

MALFORMED_REASONS: tuple[str, ...] = (
    "",  # 0: well-formed
    "missing_required",
    "malformed_email",
    "negative_amount",
    "non_numeric_amount",
    "unknown_currency",
    "impossible_date",
    "unknown_enum",
)
REASON_CODE = {name: code for code, name in enumerate(MALFORMED_REASONS)}


def base62(number: int, width: int) -> str:
    text = ""
    while number:
        number, digit = divmod(number, 62)
        text = BASE62[digit] + text
    return text.rjust(width, "0")


def unbase62(text: str) -> int:
    value = 0
    for char in text:
        value = value * 62 + _BASE62_INDEX[char]
    return value


@functools.lru_cache(maxsize=65536)
def tag(seed: int, label: str, length: int, alphabet: str = BASE62) -> str:
    """A deterministic, random-looking string so ids look like the vendor's but differ per seed."""
    digest = hashlib.sha256(f"{seed}:{label}".encode()).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:length])


def salesforce_id(key_prefix: str, seed_tag: str, index: int) -> str:
    """An 18-character Salesforce id (15-char id plus the case-safe checksum suffix)."""
    short = key_prefix + seed_tag[:3] + base62(index, 9)
    return short + _checksum(short[0:5]) + _checksum(short[5:10]) + _checksum(short[10:15])


@functools.lru_cache(maxsize=1 << 18)
def _checksum(chunk: str) -> str:
    bits = sum(1 << j for j, ch in enumerate(chunk) if "A" <= ch <= "Z")
    return "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[bits]


def salesforce_index(record_id: str) -> int | None:
    try:
        return unbase62(record_id[6:15])
    except (KeyError, IndexError):
        return None


@dataclass
class Table:
    """One source stream's rows: the truth columns plus a record builder."""

    source: str
    stream: str
    primary_key: str
    cursor_field: str | None
    time_column: str  # "modified" or "created": what the cursor field reflects
    created: np.ndarray
    modified: np.ndarray
    person: np.ndarray  # truth person index per row, -1 when not a person
    malformed: np.ndarray  # int8 code into MALFORMED_REASONS
    builder: Callable[[int], dict[str, Any]]
    id_of: Callable[[int], Any]
    index_of: Callable[[Any], int | None]
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    #: Rows whose time is at or after what this returns have not happened yet (a world with a future);
    #: None, or a None answer: every row is served.
    horizon: Callable[[], int | None] | None = field(default=None, repr=False)
    _order_cache: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    _rendered: dict[int, bytes] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.created.shape[0])

    def times(self, column: str | None = None) -> np.ndarray:
        return self.modified if (column or self.time_column) == "modified" else self.created

    def ordered(self, column: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Row indices sorted by (time, index) and the sorted times; cached until a touch."""
        key = column or self.time_column
        if key not in self._order_cache:
            times = self.times(key)
            order = np.lexsort((np.arange(len(self)), times))
            self._order_cache[key] = (order, times[order])
        return self._order_cache[key]

    def until(self, until: int | None) -> int | None:
        """`until` no later than the horizon: what has not happened yet is never served or counted."""
        horizon = self.horizon() if self.horizon is not None else None
        if horizon is None:
            return until
        return horizon if until is None else min(until, horizon)

    def visible(self, index: int) -> bool:
        horizon = self.horizon() if self.horizon is not None else None
        return horizon is None or int(self.created[index]) < horizon

    def visible_rows(self) -> np.ndarray:
        """The rows that have happened, in index order."""
        horizon = self.horizon() if self.horizon is not None else None
        if horizon is None:
            return np.arange(len(self))
        return np.nonzero(self.created < horizon)[0]

    def window(self, since: int | None, until: int | None, column: str | None = None) -> np.ndarray:
        """Rows whose time is in [since, until), ascending by (time, index)."""
        until = self.until(until)
        order, sorted_times = self.ordered(column)
        lo = 0 if since is None else int(np.searchsorted(sorted_times, since, "left"))
        hi = len(order) if until is None else int(np.searchsorted(sorted_times, until, "left"))
        return order[lo:hi]

    def count(self, since: int | None, until: int | None, column: str | None = None) -> int:
        return int(self.window(since, until, column).shape[0])

    def page(
        self,
        since: int | None,
        until: int | None,
        limit: int,
        *,
        after: tuple[int, int] | None = None,
        descending: bool = False,
        exclude: frozenset[int] | set[int] = frozenset(),
        column: str | None = None,
    ) -> tuple[list[int], bool]:
        """Keyset page: up to `limit` rows strictly after `after` (time, index) in the chosen order.

        Keyset (not offset) paging means an edit that moves a row out of the window
        never shifts the rows behind it, as in the real APIs' cursors.
        """
        until = self.until(until)
        order, sorted_times = self.ordered(column)
        lo = 0 if since is None else int(np.searchsorted(sorted_times, since, "left"))
        hi = len(order) if until is None else int(np.searchsorted(sorted_times, until, "left"))
        if after is not None:
            # Binary search for the keyset position: O(log n) per page, so paging a million rows stays linear.
            after_time, after_index = after
            first = lo + int(np.searchsorted(sorted_times[lo:hi], after_time, "left"))
            last = lo + int(np.searchsorted(sorted_times[lo:hi], after_time, "right"))
            same_time = order[first:last]
            if descending:
                hi = first + int(np.searchsorted(same_time, after_index, "left"))
            else:
                lo = first + int(np.searchsorted(same_time, after_index, "right"))
        rows = order[lo:hi]
        if descending:
            rows = rows[::-1]
        picked: list[int] = []
        position = 0  # rows[:position] have been looked at
        while len(picked) < limit and position < rows.shape[0]:
            chunk = rows[position : position + limit - len(picked) + len(exclude)].tolist()
            for index in chunk:
                position += 1
                if index in exclude:
                    continue
                picked.append(index)
                if len(picked) == limit:
                    break
        if len(picked) < limit:
            return picked, False
        rest = rows[position : position + len(exclude) + 1].tolist()
        return picked, any(index not in exclude for index in rest)

    def record(self, index: int) -> dict[str, Any]:
        return self.builder(index)

    def rendered(self, index: int) -> bytes:
        """The record as JSON bytes; from the cache when the table was pre-rendered."""
        if self._rendered is None:
            return orjson.dumps(self.builder(index))
        cached = self._rendered.get(index)
        if cached is None:
            cached = self._rendered[index] = orjson.dumps(self.builder(index))
        return cached

    def prerender(self) -> None:
        """Encode every record once, so serving a page costs what a real API's does (used by benchmarks)."""
        self._rendered = {index: orjson.dumps(self.builder(index)) for index in range(len(self))}

    def records(self, indices: Iterable[int]) -> Iterator[dict[str, Any]]:
        for index in indices:
            yield self.builder(int(index))

    def touch(self, indices: Iterable[int], at: int) -> None:
        """Mark rows as modified at `at` (epoch seconds): a later edit in the source system."""
        picked = np.fromiter((int(i) for i in indices), dtype=np.int64)
        if picked.shape[0]:
            self.modified[picked] = at
            self._order_cache.clear()
            if self._rendered is not None:
                for index in picked.tolist():
                    self._rendered.pop(index, None)

    def malformed_rows(self) -> dict[Any, str]:
        rows = self.visible_rows()
        rows = rows[self.malformed[rows] != 0]
        return {self.id_of(int(i)): MALFORMED_REASONS[int(self.malformed[i])] for i in rows}
