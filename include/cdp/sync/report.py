"""The end-of-run summary of a sync: totals over streams, and which streams did not land."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import psycopg

log = logging.getLogger(__name__)

TOTALS = ("rows_read", "rows_landed", "rows_upserted", "rows_quarantined")


class StreamsFailed(RuntimeError):
    """One or more streams did not land this run; their data is picked up by the next run."""


def summarise_run(results: Iterable[Mapping[str, Any] | None], expected: Sequence[str]) -> dict[str, int]:
    landed = [result for result in results if result]
    totals = {name: sum(int(result[name]) for result in landed) for name in TOTALS}
    done = {f"{result['source']}.{result['stream']}" for result in landed}
    missing = [key for key in expected if key not in done]
    log.info(
        "sync run: %d of %d streams landed; read %d, upserted %d, quarantined %d",
        len(done), len(expected), totals["rows_read"], totals["rows_upserted"], totals["rows_quarantined"],
    )  # fmt: skip
    if missing:
        raise StreamsFailed(
            f"{len(missing)} stream(s) did not land: {', '.join(missing)} (see their task logs)"
        )
    return totals


def earlier_complete_runs(url: str, run_id: str, expected: Sequence[str]) -> int:
    """How many sync runs other than ``run_id`` landed every one of ``expected`` (``source.stream``) streams:
    0 means ``run_id`` is the warehouse's first complete sync."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM (SELECT run_id FROM ops.sync_run"
            " WHERE run_id <> %(run_id)s AND source || '.' || stream = ANY(%(expected)s)"
            " GROUP BY run_id HAVING count(DISTINCT source || '.' || stream) = %(streams)s) complete",
            {"run_id": run_id, "expected": list(expected), "streams": len(set(expected))},
        ).fetchone()
    return int(row[0])


def complete_sync_runs(url: str, expected: Sequence[str]) -> int:
    """How many sync runs landed every one of ``expected`` (``source.stream``) streams: 0 before the first
    complete sync."""
    return earlier_complete_runs(url, "", expected)
