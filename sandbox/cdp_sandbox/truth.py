"""How the warehouse dedupe does on sandbox data, judged by the generator's truth.

The sandbox generator knows which source records belong to one real person; these helpers sync its data
into a warehouse and name, for each warehouse person, the real people behind its records, so a test or a
benchmark can count true and false merges. Only used against the sandbox: no production code path needs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import combinations

import psycopg

from cdp.sources import registry
from cdp.sync.engine import sync_stream
from cdp.sync.specs import SPECS, spec_for
from cdp.warehouse import Actor
from cdp_sandbox import salesforce as sandbox_salesforce
from cdp_sandbox.crm_amounts import crm_amount
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer

#: person_source_id key spaces whose records the generator can name the real person of directly.
TRUTH_STREAMS = {
    "moodle.user": ("moodle", "users"),
    "salesforce.contact": ("salesforce", "Contact"),
    "referralhero.subscriber": ("referralhero", "subscribers"),
    "zigpoll.participant": ("zigpoll", "participants"),
    "surveymonkey.contact": ("surveymonkey", "contacts"),
}


SANDBOX_SYNC_ACTOR = Actor("sandbox:sync")


def sync_sandbox(
    url: str,
    sandbox: SandboxServer,
    keys: Sequence[str] | None = None,
    *,
    end: datetime | None = None,
    run_id: str = "sandbox-sync",
    actor: Actor = SANDBOX_SYNC_ACTOR,
) -> None:
    """Sync streams (default all, in wave order) from the sandbox up to `end` (default now)."""
    specs = sorted(SPECS, key=lambda s: s.wave) if keys is None else [spec_for(*k.split(".")) for k in keys]
    for spec in specs:
        stream = registry.stream(spec.source, spec.stream, sandbox.settings(spec.source))
        sync_stream(url, stream, spec, actor=actor, run_id=run_id, interval_end=end or datetime.now(UTC))


def truth_of_people(url: str, world: World) -> dict[str, set[str]]:
    """Warehouse person id (following merges) -> the generator's real persons behind its records."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT coalesce(p.merged_into, p.person_id)::text, s.source, s.source_record_id"
            " FROM core.person_source_id s JOIN core.person p ON p.person_id = s.person_id"
        ).fetchall()
        # A Stripe payer is keyed by customer id or billing email: any of its charges names the person.
        charge_of_payer = dict(
            conn.execute(
                "SELECT DISTINCT ON (key) key, source_record_id FROM (SELECT coalesce(payload ->> 'customer',"
                " lower(trim(payload #>> '{billing_details,email}'))) AS key, source_record_id FROM raw.records"
                " WHERE source = 'stripe' AND stream = 'charges') c ORDER BY key, source_record_id"
            ).fetchall()
        )
    people: dict[str, set[str]] = {}
    for person, source, record in rows:
        real = None
        if source == "stripe.billing" and record in charge_of_payer:
            real = world.truth.person_of("stripe", "charges", charge_of_payer[record])
        elif source in TRUTH_STREAMS:
            record_id = int(record) if source == "moodle.user" else record
            real = world.truth.person_of(*TRUTH_STREAMS[source], record_id)
        if real is not None:
            people.setdefault(person, set()).add(real)
    return people


def true_duplicate_pairs(people: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Pairs of warehouse people (ids in order) that are the same real person."""
    by_real: dict[str, list[str]] = {}
    for person, reals in people.items():
        for real in reals:
            by_real.setdefault(real, []).append(person)
    return {tuple(sorted(pair)) for group in by_real.values() for pair in combinations(sorted(group), 2)}


def planted_allocations(world: World) -> dict[str, tuple[str, dict[str, int]]]:
    """Opportunity Id -> (planted case, {GAU Id: cents}) as the allocations should come out in the warehouse.

    Computed here apart from the warehouse's views: an amount allocation is its cents; a percent allocation is
    percent x the gift rounded half-even (NPSP's setScale(2)); when a gift is allocated 100 % by percent, the
    cents rounding leaves over go one by one to the allocations rounding cut most, ties to the lower Id.
    A gift with no allocation ("missing") has an empty dict.
    """
    sf = world.seed_tag("sf")
    opportunities = world.tables[("salesforce", "Opportunity")]
    allocations = world.tables[("salesforce", "npsp__Allocation__c")]
    by_opportunity: dict[int, list[int]] = {}
    for i, opportunity in enumerate(allocations.columns["opportunity"].tolist()):
        if opportunity >= 0:
            by_opportunity.setdefault(int(opportunity), []).append(i)
    truth: dict[str, tuple[str, dict[str, int]]] = {}
    for opportunity in range(len(opportunities)):
        gift = crm_amount(world, int(opportunities.columns["donation"][opportunity]))
        rows = by_opportunity.get(opportunity, [])
        cents: dict[int, int] = {}
        exact: dict[int, float] = {}
        for i in rows:
            value = float(allocations.columns["value"][i])
            if allocations.columns["is_percent"][i]:
                exact[i] = gift * value / 100
                cents[i] = round(exact[i])
            else:
                cents[i] = sandbox_salesforce.allocation_amount_cents(world, i) or 0
        percents = [
            float(allocations.columns["value"][i]) for i in rows if allocations.columns["is_percent"][i]
        ]
        if rows and len(percents) == len(rows) and abs(sum(percents) - 100) < 1e-9:
            residue = gift - sum(cents.values())
            step = 1 if residue > 0 else -1
            order = sorted(rows, key=lambda i: (-(exact[i] - cents[i]) * step, allocations.id_of(i)))
            for i in order[: abs(residue)]:
                cents[i] += step
        funds: dict[str, int] = {}
        for i, amount in cents.items():
            gau = sandbox_salesforce.salesforce_id("a0F", sf, int(allocations.columns["gau"][i]))
            funds[gau] = funds.get(gau, 0) + amount
        truth[opportunities.id_of(opportunity)] = (sandbox_salesforce.allocation_case(opportunity), funds)
    return truth
