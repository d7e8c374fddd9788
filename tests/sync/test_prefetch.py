"""The engine reads the source's next pages while it copies the last one: order, errors and memory kept."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from cdp.sources.base import TransientError
from cdp.sync.engine import prefetched


def _pages(count: int, pulled: list[int], fail_at: int | None = None) -> Iterator[list[dict]]:
    for number in range(count):
        if number == fail_at:
            raise TransientError(f"source down at page {number}")
        pulled.append(number)
        yield [{"page": number}]


def test_pages_arrive_complete_and_in_order() -> None:
    pulled: list[int] = []
    assert [page[0]["page"] for page in prefetched(_pages(50, pulled))] == list(range(50))


def test_a_source_error_is_raised_after_the_pages_before_it() -> None:
    seen = []
    with pytest.raises(TransientError, match="page 3"):
        for page in prefetched(_pages(10, [], fail_at=3)):
            seen.append(page[0]["page"])
    assert seen == [0, 1, 2]


def test_never_more_than_depth_pages_are_read_ahead() -> None:
    pulled: list[int] = []
    consumed = 0
    for _ in prefetched(_pages(20, pulled), depth=2):
        consumed += 1
        time.sleep(0.02)  # a slow consumer: the reader must wait for it, not run ahead
        # one page being handed over, `depth` in the queue and one blocked in put: never more
        assert len(pulled) - consumed <= 3
    assert consumed == 20


def test_stopping_early_stops_the_reader() -> None:
    pulled: list[int] = []
    for page in prefetched(_pages(1000, pulled), depth=2):
        if page[0]["page"] == 5:
            break
    time.sleep(0.2)
    assert not any(thread.name == "sync-prefetch" for thread in threading.enumerate())
    assert len(pulled) <= 9
