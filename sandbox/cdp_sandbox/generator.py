"""Seeded generator of one nonprofit's world, with the true answers kept beside it.

Deterministic from a seed and fast at any scale: every table is a handful of numpy
columns drawn in bulk (timestamps, truth person, malformed reason), and a record's
JSON is built from its row index only when someone reads it. 100k learners with
300k enrollments, 200k donations and 50k survey responses build in a few seconds.

    world = World(seed=7, learners=1000)
    world.truth.person_of("moodle", "users", 42)          # -> "P0000017"
    world.truth.expected_count("stripe", "charges", since, until)
    world.truth.malformed("salesforce", "Opportunity")    # {record id: reason}
    world.truth.ledger.discrepancies                       # what reconciliation must find

The messiness follows the seed texts: ~9% duplicates (nicknames, typos, swapped name
order, transliterations, a partner re-uploading a cohort), families sharing one
email, donors who never enrolled, minors with pending parental consent, survey
payloads without the age field, and a small share of malformed records.

Dates: without ``today`` a world spans a fixed past (2023-2024, what the tests and benchmarks were written
against); ``World(seed=7, learners=2000, today=date(2026, 12, 7))`` holds the 90 days before that day (so
yesterday, last month and every recent week have records) plus two weeks after it that are drawn alike but
served only as their time comes: not at all in a frozen world, as the clock reaches them in a live one
(``live=True``, ``cdp sandbox serve --live``). The same seed and day give the same bytes; the truth counts
only what has happened.

The people and the drawing helpers are the shared core (``core.WorldCore``); each vendor's tables come
from its own module (``moodle``, ``stripe``, ``salesforce``, ``surveys`` for Zigpoll and Typeform,
``referralhero``, ``ledger``, ``zendesk``, ``registration``; Galaxy's volunteers on first use), registered in
``cdp_sandbox.vendors`` and built each after the vendors whose data it reads, each from its own random
stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from cdp_sandbox import ledger, people, stripe
from cdp_sandbox.core import Credentials, WorldCore
from cdp_sandbox.formats import person_id, to_epoch
from cdp_sandbox.ledger import LedgerTruth
from cdp_sandbox.vendors import build_order, registered_credentials


class Truth:
    """The answers a correct pipeline must reproduce."""

    def __init__(self, world: World) -> None:
        self._world = world

    def person_of(self, source: str, stream: str, record_id: Any) -> str | None:
        table = self._world.table(source, stream)
        index = table.index_of(record_id)
        if index is None or not 0 <= index < len(table):
            raise KeyError(f"{source}.{stream} has no record {record_id!r}")
        person = int(table.person[index])
        return None if person < 0 else person_id(person)

    def person_map(self, source: str, stream: str) -> Iterator[tuple[Any, str | None]]:
        table = self._world.table(source, stream)
        for index in table.visible_rows().tolist():
            person = int(table.person[index])
            yield table.id_of(index), (None if person < 0 else person_id(person))

    def expected_count(
        self,
        source: str,
        stream: str,
        since: datetime | int | None = None,
        until: datetime | int | None = None,
    ) -> int:
        """Records whose cursor time (modified, or created for append-only streams) is in [since, until)."""
        return self._world.table(source, stream).count(to_epoch(since), to_epoch(until))

    def expected_counts(self) -> dict[str, int]:
        return {
            f"{source}.{stream}": int(table.visible_rows().shape[0])
            for (source, stream), table in self._world.tables.items()
        }

    def malformed(self, source: str, stream: str) -> dict[Any, str]:
        return self._world.table(source, stream).malformed_rows()

    def duplicate_records(self, source: str, stream: str) -> int:
        """Records beyond the first for the same real person in one stream."""
        table = self._world.table(source, stream)
        persons = table.person[table.visible_rows()]
        persons = persons[persons >= 0]
        return int(persons.shape[0] - np.unique(persons).shape[0])

    def duplicate_variant(self, record_id: int) -> str:
        """How a Moodle user record differs from its person's canonical record."""
        table = self._world.table("moodle", "users")
        return people.VARIANT_NAMES[int(table.columns["variant"][table.index_of(record_id)])]

    def minors(self, under: int = 18) -> set[str]:
        world = self._world
        ages = world.age_years(np.arange(world.person_count))
        return {person_id(int(p)) for p in np.nonzero((ages >= 0) & (ages < under))[0]}

    @property
    def ledger(self) -> LedgerTruth:
        return ledger.ledger_truth(self._world)

    @property
    def persons(self) -> int:
        return self._world.person_count


@dataclass
class World(WorldCore):
    """One nonprofit's systems, generated from a seed. Size knobs default from `learners`."""

    # Every registered vendor's credential by default (a redefined field keeps its place among the core's).
    credentials: Credentials = field(default_factory=registered_credentials)
    #: Stripe disputes to plant (opened, then won or lost: ``cdp_sandbox.stripe``); each is a reconciliation
    #: difference of class dispute in its gift's month (``truth.ledger.discrepancies["disputed"]``).
    stripe_disputes: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.truth = Truth(self)
        for vendor in build_order():
            vendor.build(self)

    # The finance ledger's files and ids, as the sandbox server and the tests use them.
    def financial_transaction_id(self, donation: int) -> str:
        return stripe.financial_transaction_id(self, donation)

    def write_ledger_drop(self, folder: str | Path, month: str) -> Path:
        """Write the finance export for one month ("2024-03") as the ledger system drops it: one CSV."""
        return ledger.write_drop(self, folder, month)

    def ledger_months(self) -> list[str]:
        return ledger.months(self)

    def ledger_truth(self) -> LedgerTruth:
        return ledger.ledger_truth(self)
