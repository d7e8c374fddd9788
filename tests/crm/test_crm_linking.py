"""Phase 2 links learners to the Contacts staff already created in the CRM instead of creating a second one,
and holds back people the CRM has several Contacts for (against the sandbox's CRM, which holds the
generated NPSP Contacts as well as those the push writes, and a real warehouse)."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from crm_world import eligible, sync_lms
from support import snapshot

from cdp.crm import push
from cdp.crm.client import SalesforceWriter
from cdp.sources import registry
from cdp.sync.engine import sync_stream
from cdp.sync.specs import spec_for
from cdp.warehouse import Actor
from cdp_sandbox.crm_writes import INTEGRATION_USER_ID, STAFF_USER_ID
from cdp_sandbox.server import SandboxServer

ACTOR = Actor("pytest")
OPS_TABLES = ("ops.crm_push_state", "ops.crm_push_conflict", "ops.crm_contact_review")
STAFF_FIELDS = ("AccountId", "Birthdate", "MailingCountry", "npe01__Preferred_Email__c", "CreatedDate")


@pytest.fixture
def synced_with_crm(warehouse_url: str, crm_sandbox: SandboxServer) -> str:
    """LMS learners, then the CRM's Contacts (the staff-created ones), synced as cdp_sync does."""
    sync_lms(warehouse_url, crm_sandbox)
    spec = spec_for("salesforce", "Contact")
    stream = registry.stream("salesforce", "Contact", crm_sandbox.settings("salesforce"))
    sync_stream(
        warehouse_url,
        stream,
        spec,
        actor=ACTOR,
        run_id="sync-crm",
        interval_end=datetime(2025, 1, 2, tzinfo=UTC),
    )
    return warehouse_url


@pytest.fixture
def run_push(synced_with_crm: str, crm_sandbox: SandboxServer, tmp_path: Path):
    counter = iter(range(1, 1000))

    def run(mode: str = "apply") -> push.PushResult:
        writer = SalesforceWriter(crm_sandbox.settings("salesforce", max_attempts=2, retry_base_delay=0.01))
        try:
            return push.push_contacts(
                synced_with_crm,
                writer,
                run_id=f"push-{next(counter)}",
                actor=ACTOR,
                mode=mode,
                report_dir=tmp_path,
            )
        finally:
            writer.close()

    return run


def known_contacts(url: str) -> dict[str, set[str]]:
    """Per warehouse person (after merges), the Ids of the Contacts the sync brought from the CRM."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT coalesce(p.merged_into, s.person_id)::text, s.source_record_id FROM core.person_source_id s"
            " JOIN core.person p ON p.person_id = s.person_id WHERE s.source = 'salesforce.contact'"
        ).fetchall()
    known: dict[str, set[str]] = {}
    for person, crm_id in rows:
        known.setdefault(person, set()).add(crm_id)
    return known


def contacts_per_person(sandbox: SandboxServer, known: dict[str, set[str]]) -> Counter:
    """How many Contacts in the CRM belong to each person: theirs by our external id, or by a synced Id."""
    owner = {crm_id: person for person, ids in known.items() for crm_id in ids}
    counts: Counter = Counter()
    for record in sandbox.apis.salesforce_writes.records["Contact"].values():
        person = record.get("CDP_Person_Id__c") or owner.get(record["Id"])
        if person is not None:
            counts[person] += 1
    return counts


def test_the_crm_holds_the_staff_created_contacts_so_a_blind_upsert_would_duplicate_one(
    synced_with_crm: str, crm_sandbox: SandboxServer
) -> None:
    """The failure the linking prevents, made visible: an upsert by our external id for a learner whose
    Contact staff created gives that learner a second Contact."""
    known = known_contacts(synced_with_crm)
    pushable = eligible(synced_with_crm, push.PUSH_PURPOSES)
    person = sorted(p for p in pushable if len(known.get(p, ())) == 1)[0]
    before = contacts_per_person(crm_sandbox, known)
    writer = SalesforceWriter(crm_sandbox.settings("salesforce"))
    try:
        [answer] = writer.upsert(
            "Contact", push.EXTERNAL_ID, [{push.EXTERNAL_ID: person, "LastName": "Blind"}]
        )
    finally:
        writer.close()

    assert before[person] == 1
    assert answer["success"] and answer["created"] is True
    assert contacts_per_person(crm_sandbox, known)[person] == 2


def test_phase2_links_existing_contacts_so_no_learner_has_two_and_staff_fields_stay(
    run_push, synced_with_crm: str, crm_sandbox: SandboxServer
) -> None:
    known = known_contacts(synced_with_crm)
    pushable = eligible(synced_with_crm, push.PUSH_PURPOSES)
    writes = crm_sandbox.apis.salesforce_writes
    generated = {crm_id: dict(r) for crm_id, r in writes.records["Contact"].items()}
    to_link = {p: next(iter(known[p])) for p in pushable if len(known.get(p, ())) == 1}
    duplicates = {p for p in pushable if len(known.get(p, ())) >= 2}
    assert len(to_link) >= 5 and duplicates, (len(to_link), len(duplicates))

    result = run_push("apply")

    assert (result.links_planned, result.linked, result.link_failed) == (len(to_link), len(to_link), 0)
    assert result.contacts_in_review == len(duplicates)
    assert result.reconciled is True
    counts = contacts_per_person(crm_sandbox, known)
    with psycopg.connect(synced_with_crm) as conn:
        refused = {row[0] for row in conn.execute("SELECT person_id::text FROM ops.crm_push_error")}
    assert refused and len(refused) == result.rejected
    assert {p for p in pushable - duplicates if counts[p] > 1} == set()
    # Nobody lacks a Contact but those the CRM refused (no family name: kept in ops.crm_push_error).
    assert {p for p in pushable - duplicates if counts[p] == 0} == refused - set(to_link)
    # Exactly the people without a Contact were created; nobody else got a new one.
    created = len(writes.records["Contact"]) - len(generated)
    assert result.creates == len(pushable - duplicates - set(to_link))
    assert created == len(pushable - duplicates - set(to_link) - refused)
    for person, crm_id in to_link.items():
        record = writes.records["Contact"][crm_id]
        assert record["CDP_Person_Id__c"] == person
        assert {f: record.get(f) for f in STAFF_FIELDS} == {f: generated[crm_id].get(f) for f in STAFF_FIELDS}
        assert record["LastModifiedById"] == INTEGRATION_USER_ID
    with psycopg.connect(synced_with_crm) as conn:
        state = dict(conn.execute("SELECT person_id::text, crm_id FROM ops.crm_push_state").fetchall())
        links = conn.execute(
            "SELECT person_id::text, crm_id, outcome FROM ops.crm_contact_link WHERE run_id = %s",
            (result.run_id,),
        ).fetchall()
        events = conn.execute(
            "SELECT count(*), sum((details ->> 'linked')::int) FROM audit.audit_events"
            " WHERE action = 'crm_contact_link_batch' AND entity_id = %s",
            (result.run_id,),
        ).fetchone()
    assert {p: state[p] for p in to_link} == to_link
    assert sorted(links) == sorted((p, c, "linked") for p, c in to_link.items())
    assert events == (-(-len(to_link) // 200), len(to_link))


def test_a_person_with_two_crm_contacts_is_queued_for_review_and_not_pushed(
    run_push, synced_with_crm: str, crm_sandbox: SandboxServer
) -> None:
    known = known_contacts(synced_with_crm)
    pushable = eligible(synced_with_crm, push.PUSH_PURPOSES)
    duplicates = {p: sorted(known[p]) for p in pushable if len(known.get(p, ())) >= 2}
    writes = crm_sandbox.apis.salesforce_writes
    before = {i: dict(writes.records["Contact"][i]) for ids in duplicates.values() for i in ids}

    run_push("apply")

    with psycopg.connect(synced_with_crm) as conn:
        queued = {
            row[0]: (row[1], row[2])
            for row in conn.execute(
                "SELECT person_id::text, reason, crm_ids FROM ops.crm_contact_review WHERE resolved_at IS NULL"
            )
        }
        state = {row[0] for row in conn.execute("SELECT person_id::text FROM ops.crm_push_state")}
    assert queued == {p: ("duplicate_contacts", ids) for p, ids in duplicates.items()}
    assert not state & set(duplicates)
    assert {i: writes.records["Contact"][i] for i in before} == before  # untouched
    assert not set(duplicates) & set(writes.by_external_id("Contact", push.EXTERNAL_ID))

    # Staff merge the duplicates in Salesforce (one Contact left): the next run links it and closes the review.
    person, ids = sorted(duplicates.items())[0]
    with writes.lock:
        for crm_id in ids[1:]:
            del writes.records["Contact"][crm_id]
    again = run_push("apply")
    with psycopg.connect(synced_with_crm) as conn:
        still_open = {
            row[0]
            for row in conn.execute(
                "SELECT person_id::text FROM ops.crm_contact_review WHERE resolved_at IS NULL"
            )
        }
    assert person not in still_open and still_open == set(duplicates) - {person}
    assert again.linked == 1
    assert writes.records["Contact"][ids[0]]["CDP_Person_Id__c"] == person


def test_the_dry_run_shows_the_link_steps_and_writes_nothing_to_the_crm(
    run_push, synced_with_crm: str, crm_sandbox: SandboxServer
) -> None:
    known = known_contacts(synced_with_crm)
    pushable = eligible(synced_with_crm, push.PUSH_PURPOSES)
    to_link = {p: next(iter(known[p])) for p in pushable if len(known.get(p, ())) == 1}
    writes = crm_sandbox.apis.salesforce_writes
    before = writes.snapshot()

    result = run_push("dry_run")

    assert writes.snapshot() == before and writes.write_requests == 0
    assert result.links_planned == len(to_link) and result.linked == 0
    with open(result.report_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["person_id"], r["crm_value"]) for r in rows if r["change"] == "link"} == set(to_link.items())
    # The linked people are planned as updates of their existing Contact, not as creates.
    assert not {r["person_id"] for r in rows if r["change"] == "create"} & set(to_link)
    assert result.creates == len(pushable - set(to_link)) - result.contacts_in_review
    with psycopg.connect(synced_with_crm) as conn:
        planned = conn.execute(
            "SELECT count(*) FROM ops.crm_contact_link WHERE run_id = %s AND outcome = 'planned'",
            (result.run_id,),
        ).fetchone()[0]
        state = conn.execute("SELECT count(*) FROM ops.crm_push_state").fetchone()[0]
    assert (planned, state) == (len(to_link), 0)


def test_rerunning_after_the_links_changes_nothing(
    run_push, synced_with_crm: str, crm_sandbox: SandboxServer
) -> None:
    first = run_push("apply")
    writes = crm_sandbox.apis.salesforce_writes
    crm_before, ops_before, requests_before = (
        writes.snapshot(),
        snapshot(synced_with_crm, OPS_TABLES),
        writes.write_requests,
    )

    again = run_push("apply")

    assert first.linked > 0 and first.rejected > 0
    # Only the records the CRM refused are planned and sent again (retried); no link, no new Contact.
    assert (again.links_planned, again.linked, again.creates) == (0, 0, first.rejected)
    assert again.sent == again.rejected == first.rejected and again.accepted == 0
    assert again.contacts_in_review == first.contacts_in_review
    assert writes.snapshot() == crm_before
    assert snapshot(synced_with_crm, OPS_TABLES) == ops_before
    assert writes.write_requests - requests_before == 1  # the one retry batch


def test_a_contact_that_carries_another_persons_id_is_queued_not_overwritten(
    run_push, synced_with_crm: str, crm_sandbox: SandboxServer
) -> None:
    known = known_contacts(synced_with_crm)
    pushable = eligible(synced_with_crm, push.PUSH_PURPOSES)
    person, crm_id = sorted((p, next(iter(known[p]))) for p in pushable if len(known.get(p, ())) == 1)[0]
    writes = crm_sandbox.apis.salesforce_writes
    writes.records["Contact"][crm_id]["CDP_Person_Id__c"] = "someone-else"

    run_push("apply")

    with psycopg.connect(synced_with_crm) as conn:
        reason = conn.execute(
            "SELECT reason FROM ops.crm_contact_review WHERE person_id = %s AND resolved_at IS NULL",
            (person,),
        ).fetchone()
    assert reason == ("external_id_taken",)
    assert writes.records["Contact"][crm_id]["CDP_Person_Id__c"] == "someone-else"
    assert person not in writes.by_external_id("Contact", push.EXTERNAL_ID)
    assert writes.records["Contact"][crm_id]["LastModifiedById"] == STAFF_USER_ID


def test_a_withdrawal_still_reaches_our_contact_when_a_second_contact_turns_up(
    run_push, synced_with_crm: str, crm_sandbox: SandboxServer
) -> None:
    run_push("apply")
    writes = crm_sandbox.apis.salesforce_writes
    pushed = writes.by_external_id("Contact", push.EXTERNAL_ID)
    person = sorted(
        p for p, r in pushed.items() if r["CDP_Course_Messages_Consent__c"] or r["CDP_Fundraising_Consent__c"]
    )[0]
    stranger = next(i for i, r in writes.records["Contact"].items() if r.get("CDP_Person_Id__c") is None)
    with psycopg.connect(synced_with_crm) as conn:
        # A staff-made Contact the sync maps to the person (a CRM duplicate), and the person withdraws.
        conn.execute(
            "INSERT INTO core.person_source_id (source, source_record_id, person_id)"
            " VALUES ('salesforce.contact', %s, %s) ON CONFLICT (source, source_record_id)"
            " DO UPDATE SET person_id = excluded.person_id",
            (stranger, person),
        )
        for purpose in ("course_messages", "fundraising"):
            conn.execute(
                "INSERT INTO core.consent (person_id, purpose, status, lawful_basis, source, source_record_id,"
                " stated_at) VALUES (%s, %s, 'withdrawn', 'consent', 'moodle', %s, now())",
                (person, purpose, f"withdraw-{purpose}"),
            )

    run_push("apply")

    with psycopg.connect(synced_with_crm) as conn:
        review = conn.execute(
            "SELECT reason FROM ops.crm_contact_review WHERE person_id = %s AND resolved_at IS NULL",
            (person,),
        ).fetchone()
    ours = writes.records["Contact"][pushed[person]["Id"]]
    assert review == ("duplicate_contacts",)
    assert (
        ours["CDP_Course_Messages_Consent__c"],
        ours["CDP_Fundraising_Consent__c"],
        ours["HasOptedOutOfEmail"],
    ) == (
        False,
        False,
        True,
    )
    assert writes.records["Contact"][stranger].get("CDP_Person_Id__c") is None  # the other one is not touched
