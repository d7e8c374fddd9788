"""The sync's view of the source registry: every stream spec, by key and in the order streams sync.

Specs are declared in each source's folder (``cdp/sources/<vendor>/specs.py``) and listed by
``cdp.sources.registry``; this module only collects them. Every tuple here is in dependency order
(``cdp.sources.order``), so syncing a tuple front to back finds each stream's parents landed.
"""

from __future__ import annotations

from cdp.sources.order import sync_order
from cdp.sources.registry import SOURCES
from cdp.sources.spec import RESOLVE_PEOPLE, StreamSpec

__all__ = [
    "BY_KEY",
    "PUSH_ONLY_SPECS",
    "RESOLVE_PEOPLE",
    "SCHEDULED_SPECS",
    "SPECS",
    "VOLUNTEER_SPECS",
    "StreamSpec",
    "spec_for",
]

# Every stream with a polling API: what cdp_sync reads every 2 hours and cdp_count_diff counts every day.
SCHEDULED_SPECS: tuple[StreamSpec, ...] = sync_order(
    [spec for source in SOURCES if source.scheduled for spec in source.specs]
)
# The volunteer platform (adopted in migration phase 4), kept out of SPECS, which the dedupe truth and the
# engine tests take as "the learner and donor streams".
VOLUNTEER_SPECS: tuple[StreamSpec, ...] = tuple(spec for spec in SCHEDULED_SPECS if spec.source == "galaxy")
SPECS: tuple[StreamSpec, ...] = tuple(spec for spec in SCHEDULED_SPECS if spec.source != "galaxy")
# Streams that only arrive by webhook (no polling API, so cdp_sync has nothing to read): the webhook DAG
# feeds them through the engine like any other (cdp.webhooks.stream).
PUSH_ONLY_SPECS: tuple[StreamSpec, ...] = tuple(
    spec for source in SOURCES if not source.scheduled for spec in source.specs
)

BY_KEY: dict[str, StreamSpec] = {spec.key: spec for spec in (*SCHEDULED_SPECS, *PUSH_ONLY_SPECS)}


def spec_for(source: str, stream: str) -> StreamSpec:
    try:
        return BY_KEY[f"{source}.{stream}"]
    except KeyError:
        raise KeyError(
            f"stream {source}.{stream} has no sync spec; declare it in cdp/sources/{source}/specs.py"
        ) from None
