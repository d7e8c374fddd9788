"""Every source, one line each: its connector, its streams (specs, order, SQL), its pool, its connections.

Adding a source is one folder ``cdp/sources/<name>/`` (``__init__.py`` with the connector's ``streams``,
``specs.py`` with ``SPECS`` and ``POOL``, ``sql/``, ``SETUP.md``) and one line in ``SOURCES`` below;
``tests/sources/test_source_completeness.py`` then says what the new source still lacks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

from cdp.sources.base import SourceSettings, Stream
from cdp.sources.spec import DEFAULT_POOL, SOURCES_DIR, StreamSpec, VendorPool


@dataclass(frozen=True)
class Source:
    name: str
    specs: tuple[StreamSpec, ...]
    pool: VendorPool | None
    # The connector's stream factory; None for a push-only source (its records arrive by webhook).
    connect: Callable[[SourceSettings], list[Stream]] | None
    connections: tuple[str, ...]  # Airflow connection ids it reads (the source's name unless push-only)

    @property
    def folder(self) -> Path:
        return SOURCES_DIR / self.name

    @property
    def scheduled(self) -> bool:
        """Polled by cdp_sync (and counted by cdp_count_diff): it has a connector."""
        return self.connect is not None


def declare(name: str, *, connections: Iterable[str] | None = None) -> Source:
    """A source from its folder ``cdp/sources/<name>/``: the package's ``streams`` (its connector; none for
    a push-only source) and its ``specs`` module's ``SPECS`` and ``POOL``."""
    package, specs = import_module(f"cdp.sources.{name}"), import_module(f"cdp.sources.{name}.specs")
    connect = getattr(package, "streams", None)
    return Source(
        name, tuple(specs.SPECS), getattr(specs, "POOL", None), connect,
        tuple(connections) if connections is not None else (name,),
    )  # fmt: skip


# The order here breaks ties only: streams that do not depend on each other sync in this order.
SOURCES: tuple[Source, ...] = (
    declare("moodle"),
    declare("salesforce"),
    declare("stripe"),
    declare("ledger"),
    declare("typeform", connections=("typeform", "webhook_typeform")),
    declare("zigpoll", connections=("zigpoll", "webhook_zigpoll")),
    declare("surveymonkey"),
    declare("referralhero"),
    declare("zendesk"),
    declare("galaxy"),
    declare("registration", connections=("webhook_registration",)),
)

BY_NAME: dict[str, Source] = {item.name: item for item in SOURCES}

# Source name -> factory of its connector's streams (polled sources only).
STREAMS: dict[str, Callable[[SourceSettings], list[Stream]]] = {
    item.name: item.connect for item in SOURCES if item.connect is not None
}


def vendor_pools(sources: Iterable[Source] = SOURCES) -> tuple[VendorPool, ...]:
    """The pools to create, one per name (Airflow's default_pool exists already); sources that share a
    pool must declare it alike."""
    pools: dict[str, VendorPool] = {}
    for item in sources:
        if item.pool is None or item.pool.name == DEFAULT_POOL.name:
            continue
        known = pools.setdefault(item.pool.name, item.pool)
        if known != item.pool:
            raise ValueError(
                f"pool {item.pool.name} is declared differently by {item.name}: {item.pool} != {known}"
            )
    return tuple(pools.values())


def source_pools(sources: Iterable[Source] = SOURCES) -> dict[str, str]:
    """Source name -> the pool its tasks run in."""
    return {item.name: item.pool.name for item in sources if item.pool is not None}


def stream(source: str, name: str, settings: SourceSettings) -> Stream:
    """One stream of a source by name."""
    for candidate in STREAMS[source](settings):
        if candidate.name == name:
            return candidate
    raise KeyError(f"{source} has no stream {name!r}")
