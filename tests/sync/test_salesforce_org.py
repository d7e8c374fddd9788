"""Salesforce orgs as they are: a single-currency org's gifts land in the org's currency, and a Contact deleted
or merged in the CRM reaches core as an audited soft delete (and a merge hint), never silently dropped."""

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
from cdp_sandbox.server import SandboxServer

ACTOR = Actor("pytest")


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=17, learners=150, donations=300)


@pytest.fixture
def sandbox(world: World, tmp_path: Path) -> Iterator[SandboxServer]:
    with SandboxServer(world, ledger_folder=tmp_path / "ledger-drop") as server:
        yield server


def sync(url: str, sandbox: SandboxServer, key: str, run: str = "run-1") -> SyncResult:
    spec = spec_for(*key.split("."))
    stream = registry.stream(spec.source, spec.stream, sandbox.settings(spec.source))
    return sync_stream(url, stream, spec, actor=ACTOR, run_id=run, interval_end=datetime.now(UTC))


def test_a_single_currency_org_syncs_its_gifts_in_the_orgs_currency(
    warehouse_url: str, world: World, sandbox: SandboxServer
) -> None:
    org = sandbox.apis.handlers["salesforce"].org
    org.multi_currency, org.currency = False, "GBP"
    for key in ("salesforce.Contact", "salesforce.Account", "stripe.charges", "salesforce.Opportunity"):
        sync(warehouse_url, sandbox, key)
    with psycopg.connect(warehouse_url) as conn:
        currencies = dict(
            conn.execute(
                "SELECT crm_currency, count(*) FROM core.donation WHERE crm_source_record_id IS NOT NULL GROUP BY 1"
            ).fetchall()
        )
        reasons = [
            row[0]
            for row in conn.execute(
                "SELECT reason FROM ops.quarantine WHERE stream = 'Opportunity' AND resolved_at IS NULL"
            ).fetchall()
        ]
    assert list(currencies) == ["GBP"] and currencies["GBP"] > 0
    assert not [reason for reason in reasons if "currency" in reason.lower()]


def test_a_contact_deleted_and_one_merged_in_the_crm_are_soft_deleted_with_audit_events(
    warehouse_url: str, world: World, sandbox: SandboxServer
) -> None:
    sync(warehouse_url, sandbox, "salesforce.Contact")
    with psycopg.connect(warehouse_url) as conn:
        mapped = dict(
            conn.execute(
                "SELECT source_record_id, person_id FROM core.person_source_id WHERE source = 'salesforce.contact'"
            ).fetchall()
        )
    by_person: dict = {}
    for contact_id, person in mapped.items():
        by_person.setdefault(person, contact_id)
    deleted, merged, master = list(by_person.values())[:3]
    api = sandbox.apis.handlers["salesforce"]
    api.delete_record("Contact", deleted)
    api.delete_record("Contact", merged, master_id=master)
    time.sleep(1.1)  # SOQL windows are whole seconds: let the deletions' second end before the next read

    result = sync(warehouse_url, sandbox, "salesforce.Contact", run="run-2")
    again = sync(warehouse_url, sandbox, "salesforce.Contact", run="run-3")

    with psycopg.connect(warehouse_url) as conn:
        removals = {
            row[0]: row[1:]
            for row in conn.execute(
                "SELECT source_record_id, kind, master_record_id, person_id, master_person_id, run_id"
                " FROM core.crm_record_removal WHERE source = 'salesforce' AND sobject = 'Contact'"
            ).fetchall()
        }
        removed_at = dict(
            conn.execute(
                "SELECT source_record_id, deleted_at IS NOT NULL FROM core.person_source_id"
                " WHERE source = 'salesforce.contact' AND source_record_id = ANY(%s)",
                ([deleted, merged, master],),
            ).fetchall()
        )
        events = conn.execute(
            "SELECT action, after FROM audit.audit_events WHERE entity_type = 'core.crm_record_removal'"
        ).fetchall()
        identity_events = conn.execute(
            "SELECT count(*) FROM audit.audit_events e, jsonb_array_elements(e.after) AS row"
            " WHERE e.entity_type = 'core.person_source_id' AND e.action = 'update'"
            " AND row ->> 'deleted_at' IS NOT NULL"
        ).fetchone()[0]
        hint = conn.execute(
            "SELECT status, guard, auto_merge_allowed FROM ops.identity_pair"
            " WHERE (person_low, person_high) = (least(%s::uuid, %s::uuid), greatest(%s::uuid, %s::uuid))",
            (mapped[merged], mapped[master], mapped[merged], mapped[master]),
        ).fetchone()
        people = conn.execute(
            "SELECT count(*) FROM core.person WHERE person_id = ANY(%s::uuid[])",
            ([mapped[deleted], mapped[merged]],),
        ).fetchone()[0]

    assert removals == {
        deleted: ("deleted", None, mapped[deleted], None, "run-2"),
        merged: ("merged", master, mapped[merged], mapped[master], "run-2"),
    }
    assert removed_at == {deleted: True, merged: True, master: False}
    assert people == 2, "a soft delete keeps the person (and their other sources)"
    inserted = [row for action, after in events if action == "insert" for row in after]
    assert {row["source_record_id"] for row in inserted} == {deleted, merged}
    assert identity_events >= 1
    assert hint is not None and hint[0] == "queued" and hint[2] is False and merged in hint[1]
    assert result.rows_read >= 2 and again.rows_quarantined == 0
    assert len(events) == 1, "re-reading the same deletions changes nothing"


def test_contact_roles_credit_the_full_gift_unless_a_partial_soft_credit_says_how_much(
    warehouse_url: str, world: World, sandbox: SandboxServer
) -> None:
    for key in ("salesforce.Contact", "salesforce.Account", "stripe.charges", "salesforce.Opportunity",
                "salesforce.npsp__Partial_Soft_Credit__c", "salesforce.OpportunityContactRole"):  # fmt: skip
        sync(warehouse_url, sandbox, key)
    with psycopg.connect(warehouse_url) as conn:
        gifts = dict(
            conn.execute(
                "SELECT crm_source_record_id, crm_amount_minor FROM core.donation"
                " WHERE crm_source_record_id IS NOT NULL"
            ).fetchall()
        )
        contacts = dict(
            conn.execute(
                "SELECT source_record_id, person_id FROM core.person_source_id WHERE source = 'salesforce.contact'"
            ).fetchall()
        )
        partial = {
            (row[0], row[1])
            for row in conn.execute(
                "SELECT d.crm_source_record_id, s.person_id FROM core.donation_soft_credit s"
                " JOIN core.donation d USING (donation_id) WHERE s.source = 'salesforce'"
            ).fetchall()
        }
        from_roles = {
            row[0]: row[1:]
            for row in conn.execute(
                "SELECT s.source_record_id, d.crm_source_record_id, s.person_id, s.amount_minor, s.role"
                " FROM core.donation_soft_credit s JOIN core.donation d USING (donation_id)"
                " WHERE s.source = 'salesforce.contact_role'"
            ).fetchall()
        }
        quarantined = dict(
            conn.execute(
                "SELECT source_record_id, reason FROM ops.quarantine"
                " WHERE stream = 'OpportunityContactRole' AND resolved_at IS NULL"
            ).fetchall()
        )
    expected = {}
    for role in world.records("salesforce", "OpportunityContactRole"):
        if role["IsPrimary"] or role["ContactId"] is None:
            continue
        opportunity, contact = role["OpportunityId"], role["ContactId"]
        if opportunity in gifts and contact in contacts and (opportunity, contacts[contact]) not in partial:
            expected[role["Id"]] = (opportunity, contacts[contact], gifts[opportunity], role["Role"])
    assert partial, "the world has partial soft credits"
    assert expected and from_roles == expected
    assert not any(role["Id"] in quarantined for role in world.records("salesforce", "OpportunityContactRole")
                   if role["IsPrimary"] and role["ContactId"])  # fmt: skip


def test_an_opportunity_deleted_in_the_crm_leaves_its_gift_and_the_reconciliation_reports_it(
    warehouse_url: str, world: World, sandbox: SandboxServer
) -> None:
    """queryAll also for Opportunities: a deleted one arrives with IsDeleted, unlinks from its donation (the
    gift is then `not_in_crm` in its month's reconciliation), is kept in core.crm_record_removal with an audit
    event, and one restored from the recycle bin links again."""
    from cdp.finance.reconcile import reconcile_month

    for key in ("salesforce.Contact", "salesforce.Account", "stripe.charges", "salesforce.Opportunity",
                "salesforce.npsp__Partial_Soft_Credit__c", "salesforce.OpportunityContactRole"):  # fmt: skip
        sync(warehouse_url, sandbox, key)
    with psycopg.connect(warehouse_url) as conn:
        # The latest gift whose Opportunity credits someone besides its donor.
        opportunity, ftid, person, received = conn.execute(
            "SELECT crm_source_record_id, financial_transaction_id, person_id, received_at FROM core.donation d"
            " WHERE crm_source_record_id IS NOT NULL"
            " AND EXISTS (SELECT 1 FROM core.donation_soft_credit s WHERE s.donation_id = d.donation_id)"
            " ORDER BY received_at DESC LIMIT 1"
        ).fetchone()
        credits_elsewhere = conn.execute(
            "SELECT count(*) FROM core.donation_soft_credit s JOIN core.donation d USING (donation_id)"
            " WHERE d.financial_transaction_id <> %s",
            (ftid,),
        ).fetchone()[0]
        linked_before = conn.execute(
            "SELECT count(*) FROM core.donation WHERE crm_source_record_id IS NOT NULL"
        ).fetchone()[0]
    api = sandbox.apis.handlers["salesforce"]
    api.delete_record("Opportunity", opportunity)
    time.sleep(1.1)  # SOQL windows are whole seconds

    sync(warehouse_url, sandbox, "salesforce.Opportunity", run="run-2")

    with psycopg.connect(warehouse_url) as conn:
        link = conn.execute(
            "SELECT crm_source_record_id, crm_amount_minor FROM core.donation WHERE financial_transaction_id = %s",
            (ftid,),
        ).fetchone()
        removal = conn.execute(
            "SELECT kind, person_id, run_id, restored_at FROM core.crm_record_removal"
            " WHERE sobject = 'Opportunity' AND source_record_id = %s",
            (opportunity,),
        ).fetchone()
        linked_after = conn.execute(
            "SELECT count(*) FROM core.donation WHERE crm_source_record_id IS NOT NULL"
        ).fetchone()[0]
        events = conn.execute(
            "SELECT count(*) FROM audit.audit_events WHERE entity_type = 'core.crm_record_removal'"
            " AND entity_id = %s",
            (opportunity,),
        ).fetchone()[0]
        waiting = conn.execute(
            "SELECT count(*) FROM ops.quarantine WHERE stream = 'Opportunity' AND source_record_id = %s",
            (opportunity,),
        ).fetchone()[0]
        credits = conn.execute(
            "SELECT count(*) FILTER (WHERE d.financial_transaction_id = %s), count(*)"
            " FROM core.donation_soft_credit s JOIN core.donation d USING (donation_id)",
            (ftid,),
        ).fetchone()
    assert link == (None, None)
    assert credits == (0, credits_elsewhere)  # its soft credits went with it; the others stay
    assert removal == ("deleted", person, "run-2", None)
    assert linked_after == linked_before - 1 and events >= 1 and waiting == 0

    result = reconcile_month(warehouse_url, received.strftime("%Y-%m"), actor=ACTOR)
    with psycopg.connect(warehouse_url) as conn:
        classes = {
            row[0]
            for row in conn.execute(
                "SELECT class FROM ops.reconciliation_result WHERE run_id = %s AND financial_transaction_id = %s",
                (result.run_id, ftid),
            )
        }
    assert "not_in_crm" in classes

    # Restored from the recycle bin: an ordinary record again, linked to its gift, its removal closed.
    api.org.removed.pop(opportunity)
    table = world.table("salesforce", "Opportunity")
    with api.apis.lock:
        table.touch([table.index_of(opportunity)], int(time.time()))
    time.sleep(1.1)
    sync(warehouse_url, sandbox, "salesforce.Opportunity", run="run-3")
    with psycopg.connect(warehouse_url) as conn:
        relinked = conn.execute(
            "SELECT crm_source_record_id FROM core.donation WHERE financial_transaction_id = %s", (ftid,)
        ).fetchone()[0]
        restored = conn.execute(
            "SELECT restored_at IS NOT NULL FROM core.crm_record_removal WHERE source_record_id = %s",
            (opportunity,),
        ).fetchone()[0]
    assert (relinked, restored) == (opportunity, True)
