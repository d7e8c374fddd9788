"""Faults on demand for the sandbox: what real vendor APIs do to a sync on a bad night.

Kinds (each scoped to a source and optionally one stream):
- ``rate_limit``: HTTP 429 with Retry-After and the vendor's own rate-limit headers and body.
- ``server_error``: HTTP 500 (or ``status``) with the vendor's error body.
- ``slow``: sleep ``delay`` seconds before answering (a client timeout turns it into a timeout).
- ``auth_failure``: the vendor's real authentication error, whatever the credential.
- ``drop_page``: one page is silently skipped; the cursor jumps over it.
- ``rename_field``: records carry ``field`` under ``renamed_to`` (an unannounced API change).
- ``drop_records``: ``count`` records of the stream in [since, until) vanish from listings (the seed
  story: the LMS API dropped 1,500 registrations in one night). Counts still report them.
- ``delete_records``: ``count`` records of the stream in [since, until) are deleted in the tool (a survey
  response its owner deleted): gone from listings and from counts alike, as the vendor forgets them.
- ``edit_during_sync``: while pages are served, ``count`` not-yet-served records are edited in the
  source, so their modification time moves past the window.

- ``lose_response``: a write is applied, then answered 502 (the connection dropped on the way back); see
  ``cdp_sandbox.crm_writes`` and ``cdp_sandbox.certificates``.

``times`` limits how many matching requests a fault affects (None: until cleared).

``planted(world)``: the seed's story dated in a world's recent past (``cdp sandbox serve --planted-faults``):
the LMS API silently dropped a share of last night's enrolments, so yesterday's count diff shows them
missing while Moodle's count still reports them. Clearing the fault (``DELETE /_sandbox/faults``) is the
vendor's fix, after which a backfill of that day recovers them. The other story, a silent donation loss, is
in the data of every world (gifts in Stripe that never reached the CRM or the ledger,
``world.truth.ledger.discrepancies``), dated across the window, so last month's reconciliation finds it.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from cdp_sandbox.core import WorldCore

FAULT_KINDS = (
    "rate_limit",
    "server_error",
    "slow",
    "auth_failure",
    "drop_page",
    "rename_field",
    "drop_records",
    "delete_records",
    "edit_during_sync",
    "lose_response",
)
_REQUEST_FAULTS = ("rate_limit", "server_error", "slow", "auth_failure")
DAY = 86_400
#: Share of the night's enrolments the LMS API drops in the planted story.
DROPPED_SHARE = 0.4


@dataclass
class Fault:
    kind: str
    source: str
    stream: str | None = None
    times: int | None = None
    retry_after: int = 1
    delay: float = 0.0
    status: int = 500
    field: str | None = None
    renamed_to: str | None = None
    count: int = 0
    since: datetime | int | None = None
    until: datetime | int | None = None
    id: int = 0
    hits: int = 0
    affected_ids: list[Any] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; choose from {FAULT_KINDS}")
        if self.kind == "rename_field" and not (self.field and self.renamed_to):
            raise ValueError("rename_field needs field and renamed_to")

    def matches(self, source: str, stream: str | None) -> bool:
        return self.source == source and (self.stream is None or self.stream == stream)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("since", "until"):
            if isinstance(data[key], datetime):
                data[key] = data[key].isoformat()
        data["affected_ids"] = [str(v) for v in self.affected_ids[:50]]
        data["affected_count"] = len(self.affected_ids)
        return data

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """Parse the CLI form ``source[:stream]:kind[:key=value,...]``, e.g. ``stripe:charges:rate_limit:times=2``."""
        parts = spec.split(":")
        options: dict[str, Any] = {}
        if "=" in parts[-1]:
            for pair in parts.pop().split(","):
                key, value = pair.split("=", 1)
                options[key] = _coerce(value)
        if len(parts) == 2:
            source, kind = parts
            stream = None
        elif len(parts) == 3:
            source, stream, kind = parts
        else:
            raise ValueError(f"fault spec {spec!r} is not source[:stream]:kind[:k=v,...]")
        return cls(kind=kind, source=source, stream=stream, **options)


def _coerce(value: str) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


class FaultBook:
    """The active faults, safe to change from tests while the server answers requests."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            fault.id = next(self._ids)
            self._faults.append(fault)
        return fault

    def remove(self, fault_id: int) -> None:
        with self._lock:
            self._faults = [f for f in self._faults if f.id != fault_id]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def take(self, source: str, stream: str | None, kinds: tuple[str, ...]) -> list[Fault]:
        """Active faults of these kinds for this request, spending one of each one's `times`."""
        taken = []
        with self._lock:
            for fault in self._faults:
                if (
                    fault.kind in kinds
                    and fault.matches(source, stream)
                    and (fault.times is None or fault.times > 0)
                ):
                    fault.hits += 1
                    if fault.times is not None:
                        fault.times -= 1
                    taken.append(fault)
        return taken

    def request_faults(self, source: str, stream: str | None) -> list[Fault]:
        return self.take(source, stream, _REQUEST_FAULTS)


def planted(world: WorldCore) -> list[Fault]:
    """The seed's stories as faults, dated relative to the world's reference day (see the module's docstring)."""
    night = (world.present_ts - DAY, world.present_ts)
    enrolments = world.table("moodle", "enrollments").count(*night)
    dropped = max(1, round(enrolments * DROPPED_SHARE)) if enrolments else 0
    if not dropped:
        return []
    return [Fault("drop_records", "moodle", "enrollments", count=dropped, since=night[0], until=night[1])]
