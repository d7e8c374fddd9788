"""Source name -> factory of its streams. Adding a source is one module and one line here."""

from __future__ import annotations

from collections.abc import Callable

from cdp.sources import galaxy, ledger, moodle, referralhero, salesforce, stripe, typeform, zendesk, zigpoll
from cdp.sources.base import SourceSettings, Stream

STREAMS: dict[str, Callable[[SourceSettings], list[Stream]]] = {
    "moodle": moodle.streams,
    "salesforce": salesforce.streams,
    "stripe": stripe.streams,
    "ledger": ledger.streams,
    "zigpoll": zigpoll.streams,
    "typeform": typeform.streams,
    "referralhero": referralhero.streams,
    "galaxy": galaxy.streams,
    "zendesk": zendesk.streams,
}


def stream(source: str, name: str, settings: SourceSettings) -> Stream:
    """One stream of a source by name."""
    for candidate in STREAMS[source](settings):
        if candidate.name == name:
            return candidate
    raise KeyError(f"{source} has no stream {name!r}")
