"""NPSP funds and allocations from the sandbox org to the warehouse: every planted case (full, split by percent,
split by amount, missing, changed) lands as the generator's truth says, each gift's allocations reconcile to
the cent, a gift without allocation is reported (ops.unallocated_gift) and never guessed, templates (by
recurring donation, by campaign) are kept apart, and an allocation deleted in the CRM leaves its gift."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from cdp.sources import registry
from cdp.sync.engine import SyncResult, sync_stream
from cdp.sync.specs import spec_for
from cdp.warehouse import Actor
from cdp_sandbox.generator import World
from cdp_sandbox.salesforce import GAU_NAMES
from cdp_sandbox.server import SandboxServer
from cdp_sandbox.truth import planted_allocations

ACTOR = Actor("pytest")
STREAMS = ("salesforce.Contact", "salesforce.Account", "stripe.charges", "salesforce.Opportunity",
           "salesforce.npsp__General_Accounting_Unit__c", "salesforce.npsp__Allocation__c")  # fmt: skip


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=19, learners=150, donations=300)


@pytest.fixture
def sandbox(world: World, tmp_path: Path) -> Iterator[SandboxServer]:
    with SandboxServer(world, ledger_folder=tmp_path / "ledger-drop") as server:
        yield server


def sync(url: str, sandbox: SandboxServer, key: str, run: str = "run-1") -> SyncResult:
    spec = spec_for(*key.split("."))
    stream = registry.stream(spec.source, spec.stream, sandbox.settings(spec.source))
    return sync_stream(url, stream, spec, actor=ACTOR, run_id=run, interval_end=datetime.now(UTC))


def landed(url: str) -> dict[str, dict[str, int]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT a.opportunity_id, f.source_record_id, sum(a.amount_minor)::bigint FROM ops.allocation_amount a"
            " JOIN core.fund f USING (fund_id) GROUP BY 1, 2"
        ).fetchall()
    result: dict[str, dict[str, int]] = {}
    for opportunity, gau, cents in rows:
        result.setdefault(opportunity, {})[gau] = cents
    return result


def test_every_planted_allocation_lands_as_the_truth_says_and_reconciles_to_the_cent(
    warehouse_url: str, world: World, sandbox: SandboxServer
) -> None:
    for key in STREAMS:
        sync(warehouse_url, sandbox, key)
    truth = planted_allocations(world)
    with psycopg.connect(warehouse_url) as conn:
        gifts = dict(conn.execute("SELECT opportunity_id, status FROM ops.gift_allocation").fetchall())
        unallocated = {
            row[0]: row[1:]
            for row in conn.execute(
                "SELECT opportunity_id, status, unallocated_minor, gift_minor FROM ops.unallocated_gift"
            ).fetchall()
        }
        templates = conn.execute(
            "SELECT count(*) FILTER (WHERE recurring_donation_id IS NOT NULL),"
            " count(*) FILTER (WHERE campaign_id IS NOT NULL), count(*) FILTER (WHERE donation_id IS NOT NULL"
            " AND (recurring_donation_id IS NOT NULL OR campaign_id IS NOT NULL))"
            " FROM core.donation_allocation"
        ).fetchone()
        funds = conn.execute("SELECT count(*) FROM core.fund WHERE deleted_at IS NULL AND active").fetchone()[
            0
        ]
    allocations = landed(warehouse_url)

    assert gifts, "the CRM's gifts landed"
    assert funds == 4
    cases = {case for opportunity, (case, _) in truth.items() if opportunity in gifts}
    assert cases == {"full", "split_percent", "split_amount", "missing", "changed"}
    for opportunity in gifts:
        case, expected = truth[opportunity]
        assert allocations.get(opportunity, {}) == expected, (opportunity, case)
        if case == "missing":
            assert gifts[opportunity] == "unallocated" and unallocated[opportunity][0] == "unallocated"
            assert (
                unallocated[opportunity][1] == unallocated[opportunity][2]
            )  # all of the gift, nothing guessed
        else:
            assert gifts[opportunity] == "allocated", (opportunity, case)  # to the cent
            assert opportunity not in unallocated
    # The 50/50 split of an odd amount: NPSP's half-even leaves a cent, the remainder rule places it.
    odd = [o for o in gifts if truth[o][0] == "split_percent" and len(set(truth[o][1].values())) == 2
           and abs(list(truth[o][1].values())[0] - list(truth[o][1].values())[1]) == 1]  # fmt: skip
    assert odd, "the world has a 50/50 split of an odd amount"
    assert templates == (1, 1, 0)  # kept, but never a gift's

    # The monthly revenue per fund (part 3's base) adds up what the truth allocates, month by month.
    with psycopg.connect(warehouse_url) as conn:
        when = {
            opportunity: (month, currency)
            for opportunity, month, currency in conn.execute(
                "SELECT crm_source_record_id, date_trunc('month', received_at AT TIME ZONE 'UTC')::date, crm_currency"
                " FROM core.donation WHERE crm_source_record_id IS NOT NULL"
            ).fetchall()
        }
        mart = {
            (gau, month, currency.strip()): cents
            for gau, month, currency, cents in conn.execute(
                "SELECT fund_source_record_id, month, currency, allocated_minor"
                " FROM mart.fund_allocated_revenue_monthly"
            ).fetchall()
        }
    expected: dict[tuple, int] = {}
    for opportunity in gifts:
        month, currency = when[opportunity]
        for gau, cents in truth[opportunity][1].items():
            key = (gau, month, currency.strip())
            expected[key] = expected.get(key, 0) + cents
    assert mart == expected


def test_an_allocation_deleted_in_the_crm_leaves_its_gift_which_is_then_reported(
    warehouse_url: str, world: World, sandbox: SandboxServer
) -> None:
    for key in STREAMS:
        sync(warehouse_url, sandbox, key)
    with psycopg.connect(warehouse_url) as conn:
        opportunity, allocation = conn.execute(
            "SELECT a.opportunity_id, a.source_record_id FROM core.donation_allocation a"
            " JOIN ops.gift_allocation g USING (opportunity_id) WHERE g.allocations = 1 AND g.status = 'allocated'"
            " ORDER BY 1 LIMIT 1"
        ).fetchone()
    sandbox.apis.handlers["salesforce"].delete_record("npsp__Allocation__c", allocation)
    time.sleep(1.1)  # the deletion's SystemModstamp is now: the next window must pass it
    result = sync(warehouse_url, sandbox, "salesforce.npsp__Allocation__c", run="run-2")

    with psycopg.connect(warehouse_url) as conn:
        kept = conn.execute(
            "SELECT deleted_at IS NOT NULL FROM core.donation_allocation WHERE source_record_id = %s",
            (allocation,),
        ).fetchone()
        reported = conn.execute(
            "SELECT status FROM ops.unallocated_gift WHERE opportunity_id = %s", (opportunity,)
        ).fetchone()
        audited = conn.execute(
            "SELECT count(*) FROM audit.audit_events WHERE entity_type = 'core.donation_allocation'"
            " AND action = 'update' AND entity_id = %s",
            (allocation,),
        ).fetchone()[0]
    assert result.rows_quarantined == 0
    assert kept == (True,)
    assert reported == ("unallocated",)
    assert audited == 1


def test_an_allocation_moved_to_another_fund_in_the_crm_moves_the_money_audited(
    warehouse_url: str, world: World, sandbox: SandboxServer
) -> None:
    for key in STREAMS:
        sync(warehouse_url, sandbox, key)
    truth = planted_allocations(world)
    table = world.table("salesforce", "npsp__Allocation__c")
    with psycopg.connect(warehouse_url) as conn:
        landed_gifts = {
            row[0] for row in conn.execute("SELECT opportunity_id FROM ops.gift_allocation").fetchall()
        }
    opportunities = world.table("salesforce", "Opportunity")
    index = next(
        i
        for i, opportunity in enumerate(table.columns["opportunity"].tolist())
        if opportunity >= 0
        and truth[opportunities.id_of(opportunity)][0] == "full"
        and opportunities.id_of(opportunity) in landed_gifts
    )
    allocation, before = table.id_of(index), int(table.columns["gau"][index])
    after = 1 if before != 1 else 2
    try:
        with sandbox.apis.lock:
            table.columns["gau"][index] = after
            table.touch([index], int(time.time()))
        time.sleep(1.1)
        sync(warehouse_url, sandbox, "salesforce.npsp__Allocation__c", run="run-2")
        with psycopg.connect(warehouse_url) as conn:
            fund = conn.execute(
                "SELECT f.name FROM core.donation_allocation a JOIN core.fund f USING (fund_id)"
                " WHERE a.source_record_id = %s",
                (allocation,),
            ).fetchone()[0]
            status = conn.execute(
                "SELECT g.status FROM ops.gift_allocation g JOIN core.donation_allocation a USING (opportunity_id)"
                " WHERE a.source_record_id = %s",
                (allocation,),
            ).fetchone()[0]
            change = conn.execute(
                "SELECT before -> 0 ->> 'fund_id' <> after -> 0 ->> 'fund_id' FROM audit.audit_events"
                " WHERE entity_type = 'core.donation_allocation' AND action = 'update' AND entity_id = %s",
                (allocation,),
            ).fetchall()
    finally:
        with sandbox.apis.lock:
            table.columns["gau"][index] = before
            table.touch([index], int(table.created[index]))
    assert fund == GAU_NAMES[after]
    assert status == "allocated"
    assert change == [(True,)]
