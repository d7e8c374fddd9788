"""What every source connector shares: settings, the Stream interface, errors and contract checks.

Connectors are plain Python (no Airflow): an adapter elsewhere turns an Airflow connection into
``SourceSettings``; a sync task calls ``stream.read(since, until)`` page by page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class SourceSettings:
    """How to reach one source system; built from an Airflow connection by someone else."""

    base_url: str
    credential: str
    extra: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Stream(Protocol):
    source: str
    name: str
    primary_key: str
    cursor_field: str | None

    def read(self, since: datetime | None, until: datetime | None) -> Iterator[list[dict]]:
        """Yield pages of records (as received, JSON-able dicts), modified in [since, until)."""
        ...

    def count(self, since: datetime, until: datetime) -> int:
        """What the source itself reports for records created/modified in the window."""
        ...


class SourceError(Exception):
    """Base of everything a connector raises on purpose."""


class AuthError(SourceError):
    """The source refused our credential: fix the connection, retrying will not help."""


class TransientError(SourceError):
    """Rate limits, 5xx and timeouts that outlived our retries: try the run again later."""


class RateLimitExhausted(TransientError):
    """The source's own quota (e.g. Salesforce DailyApiRequests) is used up."""


class ContractError(SourceError):
    """The source answered in a shape we do not understand (renamed field, unexpected body)."""


def to_utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def epoch(moment: datetime | None) -> int | None:
    moment = to_utc(moment)
    return None if moment is None else int(moment.timestamp())


def iso_utc(moment: datetime) -> str:
    return to_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(value: Any) -> datetime | None:
    """A vendor timestamp (epoch seconds or ISO 8601 with Z / +0000) as an aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    text = str(value)
    if text.isdigit():
        return datetime.fromtimestamp(int(text), UTC)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def in_window(moment: datetime | None, since: datetime | None, until: datetime | None) -> bool:
    if moment is None:
        return True
    return (since is None or moment >= since) and (until is None or moment < until)


def _lookup(record: Mapping[str, Any], parts: Sequence[str]) -> bool:
    node: Any = record
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def check_contract(
    source: str, stream: str, records: Sequence[Mapping[str, Any]], required: Sequence[str]
) -> None:
    """Fail loudly when a required field is absent from a record.

    A missing *key* means the API changed shape (e.g. a renamed field) and is a contract
    error; a present key with an empty value is bad data for the validator to quarantine.
    """
    # Parsed JSON objects are dicts; `dict` checks cost a fraction of the `Mapping` ABC's on every record.
    top_level = [name for name in required if "." not in name]
    nested = [(name, name.split(".")) for name in required if "." in name]
    for record in records:
        if not isinstance(record, dict):
            raise ContractError(f"{source}.{stream}: expected objects, got {type(record).__name__}")
        missing = next((name for name in top_level if name not in record), None)
        if missing is None:
            missing = next((name for name, parts in nested if not _lookup(record, parts)), None)
        if missing is not None:
            unexpected = sorted(set(record) - {n.split(".")[0] for n in required})[:5]
            raise ContractError(
                f"{source}.{stream}: required field {missing!r} is missing from the response "
                f"(unexpected fields: {unexpected}); the vendor API may have changed"
            )


@dataclass
class StreamInfo:
    """Static description of a stream, handy for registries and docs."""

    source: str
    name: str
    primary_key: str
    cursor_field: str | None
    required_fields: tuple[str, ...]


def classify_by_status(source: str, credential: str) -> Callable[[Any], Exception | None]:
    """The plain REST convention: 401/403 means the credential was refused, 400/404 a request we got wrong."""

    def classify(response: Any) -> Exception | None:
        if response.status_code in (401, 403):
            return AuthError(f"{source}: {credential} refused (HTTP {response.status_code})")
        if response.status_code in (400, 404):
            return ContractError(f"{source}: request rejected (HTTP {response.status_code})")
        return None

    return classify
