"""Every source, one line each: its connector, its streams (specs, order, SQL), its pool, its connections.

Adding a source is one folder ``cdp/sources/<name>/`` (``__init__.py`` with the connector's ``streams``,
``specs.py`` with ``SPECS`` and ``POOL``, ``sql/``, ``SETUP.md``) and one line in ``SOURCES`` below;
``tests/sources/test_source_completeness.py`` then says what the new source still lacks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from cdp.sources import (
    galaxy,
    ledger,
    moodle,
    referralhero,
    registration,
    salesforce,
    stripe,
    typeform,
    zendesk,
    zigpoll,
)
from cdp.sources.base import SourceSettings, Stream
from cdp.sources.galaxy import specs as galaxy_specs
from cdp.sources.ledger import specs as ledger_specs
from cdp.sources.moodle import specs as moodle_specs
from cdp.sources.referralhero import specs as referralhero_specs
from cdp.sources.registration import specs as registration_specs
from cdp.sources.salesforce import specs as salesforce_specs
from cdp.sources.spec import DEFAULT_POOL, SOURCES_DIR, StreamSpec, VendorPool
from cdp.sources.stripe import specs as stripe_specs
from cdp.sources.typeform import specs as typeform_specs
from cdp.sources.zendesk import specs as zendesk_specs
from cdp.sources.zigpoll import specs as zigpoll_specs


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


def declare(package: ModuleType, specs: ModuleType, *, connections: Iterable[str] | None = None) -> Source:
    """A source from its folder: the package (its connector) and its ``specs`` module."""
    name = package.__name__.rsplit(".", 1)[-1]
    connect = getattr(package, "streams", None)
    return Source(
        name, tuple(specs.SPECS), getattr(specs, "POOL", None), connect,
        tuple(connections) if connections is not None else (name,),
    )  # fmt: skip


# The order here breaks ties only: streams that do not depend on each other sync in this order.
SOURCES: tuple[Source, ...] = (
    declare(moodle, moodle_specs),
    declare(salesforce, salesforce_specs),
    declare(stripe, stripe_specs),
    declare(ledger, ledger_specs),
    declare(typeform, typeform_specs, connections=("typeform", "webhook_typeform")),
    declare(zigpoll, zigpoll_specs, connections=("zigpoll", "webhook_zigpoll")),
    declare(referralhero, referralhero_specs),
    declare(zendesk, zendesk_specs),
    declare(galaxy, galaxy_specs),
    declare(registration, registration_specs, connections=("webhook_registration",)),
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
