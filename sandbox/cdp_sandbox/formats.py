"""How the vendors write times, ids and money: the small shared vocabulary of every fake.

Pure functions and constants, imported by the world's core and by each vendor module alike.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from cdp_sandbox.tables import base62, unbase62

DAY = 86_400
CURRENCIES = ("usd", "eur", "gbp", "cad")
CURRENCY_WEIGHTS = (0.8, 0.08, 0.07, 0.05)


def to_epoch(moment: datetime | date | int | float | None) -> int | None:
    """Epoch seconds for a datetime (naive means UTC), a date (midnight UTC) or a number."""
    if moment is None:
        return None
    if isinstance(moment, int | float):
        return int(moment)
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp())
    return int(datetime(moment.year, moment.month, moment.day, tzinfo=UTC).timestamp())


def iso_z(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_date(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def salesforce_datetime(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def impossible_date(ts: int) -> str:
    """A date no calendar has (February 30th), in the record's own year."""
    return f"{datetime.fromtimestamp(ts, UTC).year}-02-30"


def person_id(index: int) -> str:
    """The generator's name for a real person (the truth a pipeline's person ids are judged by)."""
    return f"P{index:07d}"


# ---------------------------------------------------------------- vendor id formats
def stripe_id(prefix: str, seed_tag: str, index: int) -> str:
    """Stripe-shaped id (prefix + 24 chars) that encodes the row index in its last 8 characters."""
    return f"{prefix}_3{seed_tag[:15]}{base62(index, 8)}"


def stripe_index(record_id: Any, prefix: str, seed_tag: str) -> int | None:
    if not isinstance(record_id, str) or not record_id.startswith(f"{prefix}_3{seed_tag[:15]}"):
        return None
    try:
        return unbase62(record_id[-8:])
    except KeyError:
        return None


def mongo_id(seed_tag: str, index: int) -> str:
    hex_tag = "".join(f"{ord(c) % 16:x}" for c in seed_tag[:16])
    return f"{hex_tag[:8]}{index:08x}{hex_tag[8:16]}"


def mongo_index(record_id: Any, seed_tag: str) -> int | None:
    try:
        return int(str(record_id)[8:16], 16)
    except ValueError:
        return None


def typeform_token(seed_tag: str, index: int) -> str:
    return f"{seed_tag[:20].lower()}{index:012x}"


def typeform_index(record_id: Any, seed_tag: str) -> int | None:
    try:
        return int(str(record_id)[20:], 16)
    except ValueError:
        return None


def int_or_none(value: Any, offset: int) -> int | None:
    try:
        return int(value) + offset
    except (TypeError, ValueError):
        return None


def hex_suffix(value: Any, prefix: str) -> int | None:
    text = str(value)
    if not text.startswith(prefix):
        return None
    try:
        return int(text[len(prefix) :], 16)
    except ValueError:
        return None
