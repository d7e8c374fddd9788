"""Record-level checks that decide whether a source record may enter ``core``.

A check returns a reason (short, stable, human-readable: it is what a person reads in ``ops.quarantine``)
or ``None``. A failed record is never dropped: it goes to the quarantine with its payload and reason.

A reason names the rule and the field, never the record's values: staff roles (and the data-health page)
read ``ops.quarantine.reason`` but not the payload. The value a check refused travels beside it as a
:class:`Rejection`'s ``value`` and lands in ``ops.quarantine.reason_value``, granted like the payload.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cdp.text_rules import is_email

Check = Callable[[Mapping[str, Any]], str | None]


class Rejection(str):
    """A reason without values (what staff read) carrying the refused value apart (``reason_value``)."""

    value: str | None

    def __new__(cls, reason: str, value: str | None = None) -> Rejection:
        rejection = super().__new__(cls, reason)
        rejection.value = value
        return rejection


def rejected(reason: str, value: Any) -> Rejection:
    """``reason`` with the refused value as an operator would read it (its repr, as the reasons once quoted)."""
    return Rejection(reason, repr(value))


def split(reason: str | None) -> tuple[str | None, str | None]:
    """(reason, reason_value) as the quarantine keeps them; a plain string reason has no value."""
    if reason is None:
        return None, None
    return str(reason), getattr(reason, "value", None)


# ISO 4217 codes the nonprofit accepts; an unknown code is quarantined, never guessed.
CURRENCIES = frozenset(
    {"USD", "EUR", "GBP", "CAD", "AUD", "NZD", "CHF", "SEK", "NOK", "DKK", "JPY", "INR", "MXN", "BRL", "ZAR",
     "SGD", "HKD", "KES", "NGN", "PHP"}
)  # fmt: skip
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


def field(record: Mapping[str, Any], path: str) -> Any:
    """A value by dotted path (``billing_details.email``); missing anywhere on the way is None.

    Records are parsed JSON, so objects are plain dicts: checking ``dict`` rather than the ``Mapping`` ABC
    keeps this (called several times per record) cheap.
    """
    if "." not in path:
        return record.get(path) if isinstance(record, dict) else None
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def required(*paths: str) -> Check:
    def check(record: Mapping[str, Any]) -> str | None:
        for path in paths:
            if field(record, path) in (None, ""):
                return f"missing required field {path}"
        return None

    return check


def email(path: str, *, optional: bool = False) -> Check:
    def check(record: Mapping[str, Any]) -> str | None:
        value = field(record, path)
        if value in (None, "") and optional:
            return None
        if not isinstance(value, str) or not is_email(value.strip()):
            return f"malformed email in {path}"
        return None

    return check


def one_of(path: str, allowed: Iterable[Any]) -> Check:
    allowed = frozenset(allowed)

    def check(record: Mapping[str, Any]) -> str | None:
        value = field(record, path)
        if value not in allowed:
            return rejected(f"unknown value in {path}", value)
        return None

    return check


def amount_minor(path: str) -> Check:
    """Money arrives as integer minor units; a string, float or negative number is refused, not coerced."""

    def check(record: Mapping[str, Any]) -> str | None:
        value = field(record, path)
        if isinstance(value, bool) or not isinstance(value, int):
            return rejected(f"non-numeric amount in {path}", value)
        if value < 0:
            return f"negative amount in {path}"
        return None

    return check


def decimal_amount(path: str) -> Check:
    """CRM amounts are decimals in major units; they must be numbers, non-negative, at most 2 decimals."""

    def check(record: Mapping[str, Any]) -> str | None:
        value = field(record, path)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return rejected(f"non-numeric amount in {path}", value)
        if value < 0:
            return f"negative amount in {path}"
        if round(value * 100) != round(value * 100, 6):
            return f"amount in {path} has more than 2 decimals"
        return None

    return check


def currency(path: str) -> Check:
    def check(record: Mapping[str, Any]) -> str | None:
        value = field(record, path)
        if not isinstance(value, str) or value.upper() not in CURRENCIES:
            return rejected(f"unknown currency in {path}", value)
        return None

    return check


def iso_date(path: str, *, optional: bool = True, past: bool = True) -> Check:
    def check(record: Mapping[str, Any]) -> str | None:
        value = field(record, path)
        if value in (None, ""):
            return None if optional else f"missing required field {path}"
        try:
            parsed = date.fromisoformat(str(value)[:10])
        except ValueError:
            return rejected(f"impossible date in {path}", value)
        if parsed.year < 1900 or (past and parsed > date.today()):
            return rejected(f"impossible date in {path}", value)
        return None

    return check


def epoch_order(earlier: str, later: str, *, zero_means_open: bool = True) -> Check:
    """Two epoch timestamps in order (e.g. an enrollment's start before its end)."""

    def check(record: Mapping[str, Any]) -> str | None:
        start, end = field(record, earlier), field(record, later)
        if not isinstance(start, int) or not isinstance(end, int):
            return None
        if zero_means_open and end == 0:
            return None
        if end < start:
            return f"impossible dates: {later} before {earlier}"
        return None

    return check


def epoch_plausible(path: str) -> Check:
    def check(record: Mapping[str, Any]) -> str | None:
        value = field(record, path)
        if value in (None, 0):
            return None
        if not isinstance(value, int):
            return rejected(f"wrong type for timestamp {path}", value)
        moment = datetime.fromtimestamp(value, UTC)
        if moment < EARLIEST or moment > datetime.now(UTC) + timedelta(days=1):
            return f"impossible date in {path}"
        return None

    return check


def all_of(*checks: Check) -> Check:
    def run(record: Mapping[str, Any]) -> str | None:
        for check in checks:
            reason = check(record)
            if reason:
                return reason
        return None

    return run


# --- Amounts that the vendor signs; CSV amounts; fields required for some kinds of record
def signed_amount_minor(path: str) -> Check:
    """Integer minor units that the vendor signs (a refund's balance transaction is negative)."""

    def check(record: Mapping[str, Any]) -> str | None:
        value = field(record, path)
        if isinstance(value, bool) or not isinstance(value, int):
            return rejected(f"non-numeric amount in {path}", value)
        return None

    return check


DECIMAL_TEXT = re.compile(r"^-?\d+(\.\d{1,2})?$")


def decimal_text_amount(path: str) -> Check:
    """A CSV amount in major units as text ("-12.30"): a number with at most 2 decimals, nothing else."""

    def check(record: Mapping[str, Any]) -> str | None:
        value = field(record, path)
        if not isinstance(value, str) or not DECIMAL_TEXT.match(value.strip()):
            return rejected(f"non-numeric amount in {path}", value)
        return None

    return check


def required_when(path: str, condition_path: str, values: Iterable[Any]) -> Check:
    """A field that is required only for some kinds of record (a charge's balance transaction's source)."""
    values = frozenset(values)

    def check(record: Mapping[str, Any]) -> str | None:
        kind = field(record, condition_path)
        if kind in values and field(record, path) in (None, ""):
            return f"missing required field {path} ({condition_path} {kind})"
        return None

    return check


# --- Surveys, consent metadata and referrals


def iso_timestamp(path: str, *, optional: bool = False) -> Check:
    """An ISO 8601 moment (``2024-03-01T10:00:00Z``) that a calendar has and that is not in the future."""

    def check(record: Mapping[str, Any]) -> str | None:
        value = field(record, path)
        if value in (None, ""):
            return None if optional else f"missing required field {path}"
        try:
            text = str(value)
            moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        except ValueError:
            return rejected(f"impossible date in {path}", value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if moment < EARLIEST or moment > datetime.now(UTC) + timedelta(days=1):
            return rejected(f"impossible date in {path}", value)
        return None

    return check


def age(path: str) -> Check:
    """A reported age in whole years. Absent is fine (it stays unknown, which counts as a minor);
    a negative number is the tools' "unknown" and is kept as unknown; anything else must be 0-130."""

    def check(record: Mapping[str, Any]) -> str | None:
        value = field(record, path)
        if value is None or (isinstance(value, int) and not isinstance(value, bool) and value < 0):
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            return rejected(f"wrong type for age in {path}", value)
        if value > 130:
            return rejected(f"impossible age in {path}", value)
        return None

    return check


def boolean(path: str) -> Check:
    def check(record: Mapping[str, Any]) -> str | None:
        value = field(record, path)
        if value is not None and not isinstance(value, bool):
            return rejected(f"wrong type for {path}", value)
        return None

    return check


def each(path: str, check: Check) -> Check:
    """Run `check` on every element of the list at `path` (e.g. a subscriber's rewards)."""

    def run(record: Mapping[str, Any]) -> str | None:
        items = field(record, path)
        if items is None:
            return None
        if not isinstance(items, list):
            return f"wrong type for {path}: expected a list"
        for item in items:
            reason = check(item if isinstance(item, Mapping) else {})
            if reason:
                return Rejection(f"{path}: {reason}", getattr(reason, "value", None))
        return None

    return run


def non_negative_int(path: str, *, optional: bool = True) -> Check:
    """A count (clicks, sign-ups): a whole number, zero or more."""

    def check(record: Mapping[str, Any]) -> str | None:
        value = field(record, path)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            return rejected(f"wrong type for {path}", value)
        if value < 0:
            return f"negative count in {path}"
        return None

    return check
