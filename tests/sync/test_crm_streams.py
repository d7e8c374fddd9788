"""The CRM streams from the sandbox: NPSP accounts, opportunities and partial soft credits.

Households and organisations land from the accounts and their contacts are linked to them whichever
stream arrives first; each opportunity lands on the processor's donation with the same financial
transaction id, or waits in the quarantine until that donation arrives; soft credits credit the right
person with the right amount; planted faults are quarantined with their reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from cdp.sources import registry
from cdp.sync.engine import SyncResult, sync_stream
from cdp.sync.specs import spec_for
from cdp.warehouse import Actor
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer

ACTOR = Actor("pytest")
REASON_WORDS = {
    "missing_required": ("missing required",),
    "negative_amount": ("negative amount",),
    "non_numeric_amount": ("non-numeric",),
    "unknown_currency": ("unknown currency",),
    "unknown_enum": ("unknown value",),
    "impossible_date": ("impossible date",),
}
CRM = ("salesforce.Contact", "salesforce.Account", "stripe.charges", "salesforce.Opportunity",
       "salesforce.npsp__Partial_Soft_Credit__c")  # fmt: skip
SOFT_CREDITS = "salesforce.npsp__Partial_Soft_Credit__c"


@pytest.fixture(scope="module")
def world() -> World:
    # Denser faults than the default 0.5%, so every stream has planted faults and orphans to find.
    return World(seed=13, learners=250, donations=1200, malformed_rate=0.03)


@pytest.fixture
def sandbox(world: World, tmp_path: Path) -> Iterator[SandboxServer]:
    with SandboxServer(world, ledger_folder=tmp_path / "ledger-drop") as server:
        yield server


def sync(url: str, sandbox: SandboxServer, key: str, run: str = "run-1") -> SyncResult:
    spec = spec_for(*key.split("."))
    stream = registry.stream(spec.source, spec.stream, sandbox.settings(spec.source))
    return sync_stream(url, stream, spec, actor=ACTOR, run_id=run, interval_end=datetime.now(UTC))


def minor(amount: float) -> int:
    return int(Decimal(str(amount)) * 100)


class Expected:
    """What a correct sync lands. A record lands when it passes its stream's check and its parents landed;
    which parents (contacts, charges) pass is their own streams' business, so their checks are asked."""

    def __init__(self, world: World) -> None:
        passes = lambda key, record: spec_for(*key.split(".")).check(record) is None  # noqa: E731
        accounts = [a for a in world.records("salesforce", "Account") if passes("salesforce.Account", a)]
        self.households = {
            a["Id"]: a for a in accounts if a["npe01__SYSTEM_AccountType__c"] == "Household Account"
        }
        self.organizations = {a["Id"]: a for a in accounts if a["Id"] not in self.households}
        self.contacts = {
            c["Id"]: c for c in world.records("salesforce", "Contact") if passes("salesforce.Contact", c)
        }
        charges = {c["id"]: c for c in world.records("stripe", "charges") if passes("stripe.charges", c)}
        ftids = set(charges)  # a gift is keyed by its charge id
        opportunities = [
            o for o in world.records("salesforce", "Opportunity") if passes("salesforce.Opportunity", o)
        ]
        self.gifts = {o["Id"]: o for o in opportunities if o["Financial_Transaction_Id__c"] in ftids}
        self.orphan_gifts = {o["Id"] for o in opportunities if o["Financial_Transaction_Id__c"] not in ftids}
        credits = [
            s for s in world.records("salesforce", "npsp__Partial_Soft_Credit__c") if passes(SOFT_CREDITS, s)
        ]
        self.soft_credits = {
            s["Id"]: s
            for s in credits
            if s["npsp__Opportunity__c"] in self.gifts and s["npsp__Contact__c"] in self.contacts
        }
        self.orphan_soft_credits = {s["Id"] for s in credits if s["Id"] not in self.soft_credits}


def household_links(conn: psycopg.Connection) -> dict[str, str | None]:
    """Contact id -> the Salesforce account id of its person's household."""
    return dict(
        conn.execute(
            "SELECT m.source_record_id, h.source_record_id FROM core.person_source_id m"
            " JOIN core.person p ON p.person_id = m.person_id"
            " LEFT JOIN core.household h ON h.household_id = p.household_id"
            " WHERE m.source = 'salesforce.contact'"
        ).fetchall()
    )


def organization_links(conn: psycopg.Connection) -> set[tuple[str, str]]:
    """(contact id, organisation account id) for every CRM contact of an organisation."""
    return set(
        conn.execute(
            "SELECT m.source_record_id, o.source_record_id FROM core.person_source_id m"
            " JOIN core.organization_membership om ON om.person_id = m.person_id AND om.role = 'contact'"
            " JOIN core.organization o ON o.organization_id = om.organization_id AND o.source = 'salesforce'"
            " WHERE m.source = 'salesforce.contact'"
        ).fetchall()
    )


@pytest.mark.parametrize("order", ["contacts first", "accounts first"])
def test_households_and_organisations_land_and_link_whichever_stream_comes_first(
    warehouse_url: str, world: World, sandbox: SandboxServer, order: str
) -> None:
    keys = ["salesforce.Contact", "salesforce.Account"]
    for key in keys if order == "contacts first" else reversed(keys):
        sync(warehouse_url, sandbox, key)
    expected = Expected(world)
    assert expected.households and expected.organizations

    with psycopg.connect(warehouse_url) as conn:
        households = dict(
            conn.execute(
                "SELECT source_record_id, name FROM core.household WHERE source = 'salesforce'"
            ).fetchall()
        )
        organizations = {
            row[0]: row[1:]
            for row in conn.execute(
                "SELECT source_record_id, name, kind FROM core.organization WHERE source = 'salesforce'"
            )
        }
        links, memberships = household_links(conn), organization_links(conn)
        quarantine = dict(
            conn.execute(
                "SELECT source_record_id, reason FROM ops.quarantine WHERE stream = 'Account'"
            ).fetchall()
        )
    assert households == {a: h["Name"] for a, h in expected.households.items()}
    assert organizations == {a: (o["Name"], "partner") for a, o in expected.organizations.items()}
    planted = world.truth.malformed("salesforce", "Account")
    assert planted and set(quarantine) == set(planted)
    assert all(reason == "missing required field Name" for reason in quarantine.values())

    for contact_id, contact in expected.contacts.items():
        account = contact["AccountId"]
        if account in expected.households:
            assert links[contact_id] == account, contact_id
        elif account in expected.organizations:
            assert (contact_id, account) in memberships, contact_id
    assert memberships == {
        (cid, c["AccountId"])
        for cid, c in expected.contacts.items()
        if c["AccountId"] in expected.organizations
    }
    # A contact whose account was quarantined is linked to nothing (rather than to a guess).
    orphaned = [cid for cid, c in expected.contacts.items() if c["AccountId"] in planted]
    assert all(links[cid] is None for cid in orphaned)


def test_a_household_quarantined_then_fixed_at_the_source_links_its_contacts(warehouse_url: str) -> None:
    """The link also completes when the account only becomes valid later (a newer version from the CRM)."""
    world = World(seed=13, learners=250, donations=1200, malformed_rate=0.03)  # this test edits its world
    with SandboxServer(world) as sandbox:
        _quarantined_household_fixed_later(warehouse_url, world, sandbox)


def _quarantined_household_fixed_later(warehouse_url: str, world: World, sandbox: SandboxServer) -> None:
    sync(warehouse_url, sandbox, "salesforce.Account")
    sync(warehouse_url, sandbox, "salesforce.Contact")
    planted = next(iter(world.truth.malformed("salesforce", "Account")))
    members = [cid for cid, c in Expected(world).contacts.items() if c["AccountId"] == planted]
    with psycopg.connect(warehouse_url) as conn:
        assert members and all(household_links(conn)[cid] is None for cid in members)

    table = world.table("salesforce", "Account")
    table.malformed[table.index_of(planted)] = 0  # someone fills in the account's name in the CRM
    world.touch("salesforce", "Account", [planted], datetime.now(UTC) - timedelta(minutes=1))
    fixed = sync(warehouse_url, sandbox, "salesforce.Account", run="run-2")
    assert fixed.rows_read == 1 and fixed.rows_upserted == 1
    with psycopg.connect(warehouse_url) as conn:
        links = household_links(conn)
        resolution = conn.execute(
            "SELECT resolution FROM ops.quarantine WHERE stream = 'Account' AND source_record_id = %s",
            (planted,),
        ).fetchone()[0]
    assert all(links[cid] == planted for cid in members)
    assert resolution == "superseded by a valid version in run run-2"


@pytest.mark.parametrize("accounts", ["before the gifts", "after the gifts"])
def test_opportunities_land_on_the_processors_donation_by_financial_transaction_id(
    warehouse_url: str, world: World, sandbox: SandboxServer, accounts: str
) -> None:
    order = list(CRM)
    if accounts == "after the gifts":
        order.remove("salesforce.Account")
        order.append("salesforce.Account")
    for key in order:
        sync(warehouse_url, sandbox, key)
    expected = Expected(world)
    assert expected.gifts and expected.orphan_gifts

    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute(
            "SELECT d.crm_source_record_id, d.financial_transaction_id, d.crm_amount_minor, d.crm_currency,"
            "       d.crm_stage, d.crm_close_date::text, d.amount_minor, d.currency, h.source_record_id"
            " FROM core.donation d LEFT JOIN core.household h USING (household_id)"
            " WHERE d.crm_source_record_id IS NOT NULL"
        ).fetchall()
        totals = dict(
            conn.execute(
                "SELECT crm_currency, sum(crm_amount_minor)::bigint FROM core.donation"
                " WHERE crm_source_record_id IS NOT NULL GROUP BY 1"
            ).fetchall()
        )
        quarantine = dict(
            conn.execute(
                "SELECT source_record_id, reason FROM ops.quarantine"
                " WHERE stream = 'Opportunity' AND resolved_at IS NULL"
            ).fetchall()
        )
    assert {row[0] for row in rows} == set(expected.gifts)
    for opp_id, ftid, crm_minor, crm_currency, stage, close, amount, currency, household in rows:
        gift = expected.gifts[opp_id]
        assert (ftid, crm_minor, crm_currency, stage, close) == (
            gift["Financial_Transaction_Id__c"], minor(gift["Amount"]), gift["CurrencyIsoCode"],
            gift["StageName"], gift["CloseDate"],
        )  # fmt: skip
        # The generator's CRM agrees with the processor on every gift it has; the columns sit side by side.
        assert (crm_minor, crm_currency) == (amount, currency)
        assert household == (gift["AccountId"] if gift["AccountId"] in expected.households else None)
    want: Counter[str] = Counter()
    for gift in expected.gifts.values():
        want[gift["CurrencyIsoCode"]] += minor(gift["Amount"])
    assert totals == dict(want)

    planted = world.truth.malformed("salesforce", "Opportunity")
    assert set(quarantine) == {str(i) for i in planted} | expected.orphan_gifts
    for opp_id, fault in planted.items():
        assert any(word in quarantine[opp_id] for word in REASON_WORDS[fault]), (fault, quarantine[opp_id])
    for opp_id in expected.orphan_gifts:
        assert quarantine[opp_id].startswith("no processor donation yet: its financial transaction is not in")


def test_an_opportunity_synced_before_its_charge_waits_and_lands_on_the_next_sync(
    warehouse_url: str, world: World, sandbox: SandboxServer
) -> None:
    expected = Expected(world)
    early = sync(warehouse_url, sandbox, "salesforce.Opportunity", run="crm-first")
    assert early.rows_upserted == 0
    sync(warehouse_url, sandbox, "stripe.charges", run="charges")
    later = sync(warehouse_url, sandbox, "salesforce.Opportunity", run="next")
    assert later.rows_replayed == len(expected.gifts)
    with psycopg.connect(warehouse_url) as conn:
        matched = {row[0] for row in conn.execute("SELECT crm_source_record_id FROM core.donation")} - {None}
        resolved = dict(
            conn.execute(
                "SELECT source_record_id, resolution FROM ops.quarantine"
                " WHERE stream = 'Opportunity' AND resolved_at IS NOT NULL"
            ).fetchall()
        )
        still = {
            row[0]
            for row in conn.execute(
                "SELECT source_record_id FROM ops.quarantine WHERE stream = 'Opportunity' AND resolved_at IS NULL"
            )
        }
    assert matched == set(expected.gifts)
    assert resolved == dict.fromkeys(expected.gifts, "replayed in run next")
    assert (
        still == {str(i) for i in world.truth.malformed("salesforce", "Opportunity")} | expected.orphan_gifts
    )


def test_soft_credits_credit_the_right_person_with_the_right_amount(
    warehouse_url: str, world: World, sandbox: SandboxServer
) -> None:
    for key in CRM:
        sync(warehouse_url, sandbox, key)
    expected = Expected(world)
    assert expected.soft_credits and expected.orphan_soft_credits

    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute(
            "SELECT s.source_record_id, d.crm_source_record_id, m.source_record_id, s.amount_minor, s.role,"
            "       d.crm_currency"
            " FROM core.donation_soft_credit s JOIN core.donation d USING (donation_id)"
            " JOIN core.person_source_id m ON m.person_id = s.person_id AND m.source = 'salesforce.contact'"
        ).fetchall()
        quarantine = dict(
            conn.execute(
                "SELECT source_record_id, reason FROM ops.quarantine"
                " WHERE stream = 'npsp__Partial_Soft_Credit__c' AND resolved_at IS NULL"
            ).fetchall()
        )
    credited: dict[str, set[str]] = {}
    for credit_id, opp_id, contact_id, amount, role, currency in rows:
        credit = expected.soft_credits[credit_id]
        assert (opp_id, amount, role, currency) == (
            credit["npsp__Opportunity__c"], minor(credit["npsp__Amount__c"]), credit["npsp__Role_Name__c"],
            credit["CurrencyIsoCode"],
        )  # fmt: skip
        credited.setdefault(credit_id, set()).add(contact_id)
    assert set(credited) == set(expected.soft_credits)
    # The credited person is the contact's (several contacts may resolve to one person).
    assert all(
        expected.soft_credits[cid]["npsp__Contact__c"] in contacts for cid, contacts in credited.items()
    )

    planted = world.truth.malformed("salesforce", "npsp__Partial_Soft_Credit__c")
    assert planted and set(quarantine) == {str(i) for i in planted} | expected.orphan_soft_credits
    for credit_id, fault in planted.items():
        assert any(word in quarantine[credit_id] for word in REASON_WORDS[fault]), (
            fault,
            quarantine[credit_id],
        )
    for credit_id in expected.orphan_soft_credits:
        assert quarantine[credit_id].startswith(("unknown opportunity", "unknown contact")), quarantine[
            credit_id
        ]


class EditedRecords:
    """What the CRM sends after someone edits records: the edited records, whatever the window."""

    source, name, primary_key = "salesforce", "Opportunity", "Id"

    def __init__(self, records: list[dict]) -> None:
        self.records = records

    def read(self, since, until):
        yield self.records


def test_an_opportunity_moved_to_another_gift_leaves_the_first(
    warehouse_url: str, world: World, sandbox: SandboxServer
) -> None:
    for key in CRM[:4]:
        sync(warehouse_url, sandbox, key)
    expected = Expected(world)
    with psycopg.connect(warehouse_url) as conn:
        unclaimed = conn.execute(
            "SELECT financial_transaction_id FROM core.donation WHERE crm_source_record_id IS NULL LIMIT 1"
        ).fetchone()[0]
    opp_id, gift = next(iter(expected.gifts.items()))
    spec = spec_for("salesforce", "Opportunity")
    edited_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    stream = EditedRecords([{**gift, "Financial_Transaction_Id__c": unclaimed, "SystemModstamp": edited_at}])
    sync_stream(warehouse_url, stream, spec, actor=ACTOR, run_id="moved", interval_end=datetime.now(UTC))
    with psycopg.connect(warehouse_url) as conn:
        now_on = conn.execute(
            "SELECT financial_transaction_id FROM core.donation WHERE crm_source_record_id = %s", (opp_id,)
        ).fetchall()
        left = conn.execute(
            "SELECT crm_amount_minor, crm_stage, household_id FROM core.donation WHERE financial_transaction_id = %s",
            (gift["Financial_Transaction_Id__c"],),
        ).fetchone()
    assert now_on == [(unclaimed,)]
    assert left == (None, None, None)
