"""Daily count diffs: does what the source says it holds for a window match what reached ``core``?

For every synced stream the source is asked afresh through its own count endpoint (``Stream.count``), and
the warehouse counts, in SQL, the window's records in ``raw`` (by each record's latest landed version and
its cursor time) and how many of them reached ``core`` or wait in the quarantine. The difference is located:
never fetched (source > raw), rejected (quarantined), or dropped (in raw, neither in core nor quarantined).
Every result is kept in ``ops.count_diff``; alerting is ``cdp.quality.data_alerts``' job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cdp.paths import SQL_DIR
from cdp.sources import registry
from cdp.sources.base import SourceSettings, Stream
from cdp.sync.specs import SPECS, StreamSpec
from cdp.warehouse import Actor, transaction

log = logging.getLogger(__name__)

COUNT_DIFF_SQL = SQL_DIR / "quality" / "count_diff.sql"


@dataclass(frozen=True)
class CountDiff:
    source: str
    stream: str
    entity: str
    window_start: datetime
    window_end: datetime
    source_count: int
    raw_count: int
    core_count: int
    quarantined_count: int
    never_fetched: int
    dropped: int
    variance: float
    threshold: float
    status: str
    loss_location: str
    repair: str | None
    deleted_count: int = 0  # reached core, deleted at the source since (revision 0024): not a loss

    @property
    def key(self) -> str:
        return f"{self.source}.{self.stream}"

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> CountDiff:
        return cls(
            **{name: row[name] for name in cls.__dataclass_fields__ if name not in ("variance", "threshold")},
            variance=float(row["variance"]),
            threshold=float(row["threshold"]),
        )

    def as_dict(self) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        values["window_start"] = self.window_start.isoformat()
        values["window_end"] = self.window_end.isoformat()
        return values


def core_target(spec: StreamSpec) -> tuple[str, str]:
    """Where a stream's records show up in core: the table and the ``source`` value that keys them there."""
    if spec.landed_in is not None:
        return spec.landed_in
    if spec.entity == "core.person":
        return "core.person_source_id", spec.person_source or spec.source
    return spec.entity, spec.source


def cursor_field(spec: StreamSpec, stream: Stream) -> str:
    # Full-read streams (courses) have no cursor; the source counts them by modification time.
    return stream.cursor_field or "timemodified"


def check_stream(
    url: str,
    spec: StreamSpec,
    stream: Stream,
    *,
    run_id: str,
    window_start: datetime,
    window_end: datetime,
    actor: Actor,
) -> CountDiff:
    """Count one stream's window at the source and in the warehouse, and record the diff."""
    source_count = int(stream.count(window_start, window_end))
    core_table, key_source = core_target(spec)
    params = {
        "run_id": run_id,
        "source": spec.source,
        "stream": spec.stream,
        "entity": spec.entity,
        "core_table": core_table,
        "key_source": key_source,
        "cursor_field": cursor_field(spec, stream),
        "window_start": window_start,
        "window_end": window_end,
        "source_count": source_count,
    }
    with transaction(url, actor) as conn:
        row = conn.execute(COUNT_DIFF_SQL.read_text(), params).fetchone()
    diff = CountDiff.from_row(row)
    log.info(
        "count diff %s: source %d, raw %d, core %d, quarantined %d -> %s (%s)",
        diff.key, diff.source_count, diff.raw_count, diff.core_count, diff.quarantined_count,
        diff.status, diff.loss_location,
    )  # fmt: skip
    return diff


def day_window(moment: datetime) -> tuple[datetime, datetime]:
    """The whole UTC day before ``moment``: a daily run checks yesterday, once every sync of it is done."""
    moment = moment.astimezone(UTC)
    end = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return end - timedelta(days=1), end


def requested_window(
    window_start: str | None, window_end: str | None, moment: datetime | None
) -> tuple[datetime, datetime]:
    """The window a run checks: the params' ISO 8601 window when given (end default: a day after the start),
    else the UTC day before ``moment`` (the run's logical date, its interval's end, or now for a manual run
    that has neither)."""
    if window_start:
        start = _utc(datetime.fromisoformat(window_start))
        return start, _utc(datetime.fromisoformat(window_end)) if window_end else start + timedelta(days=1)
    return day_window(moment or datetime.now(UTC))


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass
class CountDiffRun:
    diffs: list[CountDiff]
    failures: dict[str, str]  # stream key -> why it could not be counted


def run_count_diff(
    url: str,
    settings_for: Callable[[str], SourceSettings],
    *,
    run_id: str,
    window_start: datetime,
    window_end: datetime,
    actor: Actor,
    specs: Iterable[StreamSpec] = SPECS,
) -> CountDiffRun:
    """Every synced stream's count diff for the window (one source call and one SQL statement each).

    A source that cannot be asked does not stop the others; its failure is returned for the alert.
    """
    result = CountDiffRun([], {})
    for spec in specs:
        try:
            stream = registry.stream(spec.source, spec.stream, settings_for(spec.source))
            diff = check_stream(
                url,
                spec,
                stream,
                run_id=run_id,
                window_start=window_start,
                window_end=window_end,
                actor=actor,
            )
        except Exception as error:  # noqa: BLE001 - reported per stream, then the run fails
            log.warning("count diff %s failed: %s", spec.key, type(error).__name__)
            result.failures[spec.key] = f"{type(error).__name__}: {error}"
            continue
        result.diffs.append(diff)
    return result
