"""Migration phase 2 against the sandbox's Salesforce write API and a real warehouse: dry run, consent rule,
staff-edit conflicts, per-record errors with retry, withdrawn consent, reconciliation."""

from __future__ import annotations

import csv
import uuid
from pathlib import Path

import psycopg
import pytest
import requests
from crm_world import eligible, refused
from support import snapshot

from cdp.crm import push
from cdp.crm.client import SalesforceWriter
from cdp.privacy import erase_person
from cdp.warehouse import Actor
from cdp_sandbox.crm_writes import STAFF_USER_ID
from cdp_sandbox.server import SandboxServer

ACTOR = Actor("pytest")
PUSH_TABLES = ("ops.crm_push_state", "ops.crm_push_conflict")


def without_last_name(url: str, people: set[str]) -> set[str]:
    """Learners known by one name only: the CRM requires LastName, so it refuses them (kept, retried)."""
    with psycopg.connect(url) as conn:
        return {
            row[0]
            for row in conn.execute(
                "SELECT person_id::text FROM core.person WHERE family_name IS NULL AND person_id = ANY(%s::uuid[])",
                (sorted(people),),
            )
        }


def open_errors(url: str) -> dict[tuple[str, str], int]:
    with psycopg.connect(url) as conn:
        return {
            (row[0], row[1]): row[2]
            for row in conn.execute(
                "SELECT person_id::text, error_code, attempts FROM ops.crm_push_error WHERE resolved_at IS NULL"
            )
        }


@pytest.fixture
def run_push(synced: str, crm_sandbox: SandboxServer, tmp_path: Path):
    counter = iter(range(1, 1000))

    def run(mode: str = "apply") -> push.PushResult:
        writer = SalesforceWriter(crm_sandbox.settings("salesforce", max_attempts=2, retry_base_delay=0.01))
        try:
            return push.push_contacts(
                synced, writer, run_id=f"push-{next(counter)}", actor=ACTOR, mode=mode, report_dir=tmp_path
            )
        finally:
            writer.close()

    return run


def contacts(sandbox: SandboxServer) -> dict[str, dict]:
    return sandbox.apis.salesforce_writes.by_external_id("Contact", "CDP_Person_Id__c")


def staff_edit(sandbox: SandboxServer, person: str, fields: dict) -> None:
    answer = requests.post(
        f"{sandbox.base_url}/_sandbox/salesforce/staff-edit",
        json={
            "sobject": "Contact",
            "external_id_field": "CDP_Person_Id__c",
            "external_id": person,
            "fields": fields,
        },
        timeout=5,
    )
    answer.raise_for_status()


def test_first_run_is_a_dry_run_that_reports_every_field_and_writes_nothing_to_the_crm(
    run_push, synced: str, crm_sandbox: SandboxServer
) -> None:
    before = crm_sandbox.apis.salesforce_writes.snapshot()
    expected = eligible(synced, push.PUSH_PURPOSES)

    result = run_push("auto")

    assert result.dry_run is True
    assert crm_sandbox.apis.salesforce_writes.snapshot() == before
    assert crm_sandbox.apis.salesforce_writes.write_requests == 0
    assert result.creates == len(expected) > 20
    with open(result.report_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["person_id"] for row in rows} == expected
    assert len(rows) == len(expected) * len(push.PUSH_FIELDS)
    with psycopg.connect(synced) as conn:
        person, email = conn.execute(
            "SELECT person_id::text, email FROM core.person WHERE person_id = %s::uuid",
            (sorted(expected)[0],),
        ).fetchone()
        planned = conn.execute(
            "SELECT count(*) FROM ops.crm_push_change WHERE run_id = %s", (result.run_id,)
        ).fetchone()
        state_rows = conn.execute("SELECT count(*) FROM ops.crm_push_state").fetchone()[0]
    assert {
        "person_id": person,
        "field": "Email",
        "change": "create",
        "crm_value": "",
        "new_value": email,
    } in rows
    assert planned == (len(rows),)
    assert state_rows == 0
    # "auto" stays a dry run until a run is applied on purpose.
    assert run_push("auto").dry_run is True
    assert crm_sandbox.apis.salesforce_writes.snapshot() == before


def test_apply_pushes_exactly_the_eligible_learners_and_a_rerun_changes_nothing(
    run_push, synced: str, crm_sandbox: SandboxServer
) -> None:
    expected = eligible(synced, push.PUSH_PURPOSES)
    # Minors refused for fundraising whom no other purpose lets us contact (pending parental consent).
    minors = refused(synced, "fundraising", "minor_without") - eligible(synced, ("course_messages",))
    assert minors and not (minors & expected)

    one_name = without_last_name(synced, expected)
    assert one_name

    result = run_push("apply")

    accepted = len(expected) - len(one_name)
    assert (result.sent, result.accepted, result.rejected, result.verified) == (
        len(expected), accepted, len(one_name), accepted
    )  # fmt: skip
    assert result.reconciled is True
    pushed = contacts(crm_sandbox)
    assert set(pushed) == expected - one_name
    assert open_errors(synced) == {(person, "REQUIRED_FIELD_MISSING"): 1 for person in one_name}
    assert not (set(pushed) & minors)  # a minor without verified parental consent never reaches the CRM
    with psycopg.connect(synced) as conn:
        people = {
            row[0]: row[1:]
            for row in conn.execute(
                "SELECT person_id::text, given_name, family_name, email, phone_e164 FROM core.person"
                " WHERE person_id = ANY(%s::uuid[])",
                (sorted(expected),),
            )
        }
        events = conn.execute(
            "SELECT details->>'sent', details->>'accepted' FROM audit.audit_events WHERE action = 'crm_push_batch'"
        ).fetchall()
    for person, record in pushed.items():
        assert (record["FirstName"], record["LastName"], record["Email"], record["Phone"]) == people[person]
    assert sum(int(sent) for sent, _ in events) == len(expected)
    assert sum(int(taken) for _, taken in events) == accepted

    crm_before, ops_before = crm_sandbox.apis.salesforce_writes.snapshot(), snapshot(synced, PUSH_TABLES)
    again = run_push("auto")  # applied once: auto now applies

    assert again.dry_run is False
    # Only the refused records are tried again (and refused again); nothing else is sent or changed.
    assert (again.creates, again.updates, again.sent, again.unchanged) == (
        len(one_name),
        0,
        len(one_name),
        accepted,
    )
    assert again.rejected == len(one_name)
    assert crm_sandbox.apis.salesforce_writes.snapshot() == crm_before
    assert snapshot(synced, PUSH_TABLES) == ops_before
    assert open_errors(synced) == {(person, "REQUIRED_FIELD_MISSING"): 2 for person in one_name}


def test_a_field_staff_edited_in_the_crm_is_held_and_queued_not_overwritten(
    run_push, synced: str, crm_sandbox: SandboxServer
) -> None:
    run_push("apply")
    person = sorted(contacts(crm_sandbox))[0]
    staff_edit(crm_sandbox, person, {"Email": "preferred.by.phone@example.org"})
    with psycopg.connect(synced) as conn:  # meanwhile the learner changes email and name in the LMS
        conn.execute(
            "UPDATE core.person SET email = 'new.address@example.net', family_name = 'Newname'"
            " WHERE person_id = %s",
            (person,),
        )

    dry = run_push("dry_run")
    result = run_push("apply")

    assert dry.conflicts_new == 1 and result.conflicts_new == 1
    record = contacts(crm_sandbox)[person]
    assert record["Email"] == "preferred.by.phone@example.org"  # the staff edit stands
    assert record["LastName"] == "Newname"  # the field nobody touched in the CRM is updated
    with psycopg.connect(synced) as conn:
        conflicts = conn.execute(
            "SELECT person_id::text, field, crm_last_modified_by, resolved_at FROM ops.crm_push_conflict"
        ).fetchall()
    assert conflicts == [(person, "Email", STAFF_USER_ID, None)]

    rerun = run_push("apply")  # held again, and queued only once
    assert (rerun.conflicts_new, rerun.conflicts_open, rerun.accepted) == (
        0,
        1,
        0,
    )  # only refused ones resent
    assert contacts(crm_sandbox)[person]["Email"] == "preferred.by.phone@example.org"

    # Breaking the hold on purpose (staff decide ours wins) overwrites: the hold was what kept the edit.
    with psycopg.connect(synced) as conn:
        conflict_id = conn.execute("SELECT conflict_id FROM ops.crm_push_conflict").fetchone()[0]
    push.resolve_conflict(synced, conflict_id, "push_warehouse", Actor("staff:reviewer"))
    run_push("apply")
    assert contacts(crm_sandbox)[person]["Email"] == "new.address@example.net"


def test_keep_crm_leaves_the_field_to_the_crm_for_good(
    run_push, synced: str, crm_sandbox: SandboxServer
) -> None:
    run_push("apply")
    person = sorted(contacts(crm_sandbox))[1]
    staff_edit(crm_sandbox, person, {"Phone": "+15550000000"})
    run_push("apply")
    with psycopg.connect(synced) as conn:
        conflict_id = conn.execute("SELECT conflict_id FROM ops.crm_push_conflict").fetchone()[0]
    push.resolve_conflict(synced, conflict_id, "keep_crm", Actor("staff:reviewer"))
    with psycopg.connect(synced) as conn:
        conn.execute("UPDATE core.person SET phone_e164 = '+15551112222' WHERE person_id = %s", (person,))

    result = run_push("apply")

    assert (result.conflicts_new, result.updates, result.accepted) == (0, 0, 0)
    assert contacts(crm_sandbox)[person]["Phone"] == "+15550000000"
    with pytest.raises(LookupError):
        push.resolve_conflict(synced, conflict_id, "keep_crm", Actor("staff:reviewer"))


def test_a_record_the_crm_refuses_is_kept_with_its_reason_and_retried_until_accepted(
    run_push, synced: str, crm_sandbox: SandboxServer
) -> None:
    people = eligible(synced, push.PUSH_PURPOSES)
    one_name = without_last_name(synced, people)
    person = sorted(people - one_name)[0]
    with psycopg.connect(synced) as conn:
        conn.execute("UPDATE core.person SET email = 'broken@@example' WHERE person_id = %s", (person,))

    first = run_push("apply")

    assert (first.rejected, first.accepted + first.rejected, first.reconciled) == (
        len(one_name) + 1, first.sent, True
    )  # fmt: skip
    assert person not in contacts(crm_sandbox)
    with psycopg.connect(synced) as conn:
        errors = conn.execute(
            "SELECT error_code, message, fields FROM ops.crm_push_error"
            " WHERE resolved_at IS NULL AND person_id = %s",
            (person,),
        ).fetchall()
    assert errors == [("INVALID_EMAIL_ADDRESS", "Email: invalid email address: <value>", ["Email"])]
    findings = {f.key for f in push.push_findings(synced, first.run_id, ACTOR)}
    assert "crm_push:errors" in findings

    second = run_push("apply")  # still broken: retried, refused again, kept again
    assert (second.sent, second.rejected) == (len(one_name) + 1, len(one_name) + 1)

    with psycopg.connect(synced) as conn:
        conn.execute("UPDATE core.person SET email = 'fixed@example.org' WHERE person_id = %s", (person,))
    third = run_push("apply")

    assert (third.sent, third.accepted, third.rejected) == (len(one_name) + 1, 1, len(one_name))
    assert contacts(crm_sandbox)[person]["Email"] == "fixed@example.org"
    assert (person, "INVALID_EMAIL_ADDRESS") not in open_errors(synced)
    with psycopg.connect(synced) as conn:
        resolved = conn.execute(
            "SELECT attempts, resolved_run_id FROM ops.crm_push_error WHERE person_id = %s", (person,)
        ).fetchall()
    assert resolved == [(2, third.run_id)]


def test_a_learner_who_withdraws_consent_is_flagged_in_the_crm_without_sending_contact_details(
    run_push, synced: str, crm_sandbox: SandboxServer
) -> None:
    run_push("apply")
    person = sorted(contacts(crm_sandbox))[2]
    before = contacts(crm_sandbox)[person]
    with psycopg.connect(synced) as conn:
        for purpose in push.PUSH_PURPOSES:
            conn.execute(
                "INSERT INTO core.consent (person_id, purpose, status, source, source_record_id, stated_at)"
                " VALUES (%s, %s, 'withdrawn', 'pytest', %s, now())",
                (person, purpose, str(uuid.uuid4())),
            )
        conn.execute(
            "UPDATE core.person SET email = 'after.withdrawal@example.org' WHERE person_id = %s", (person,)
        )

    result = run_push("apply")

    one_name = without_last_name(synced, eligible(synced, push.PUSH_PURPOSES))
    assert (result.sent, result.accepted) == (len(one_name) + 1, 1)
    after = contacts(crm_sandbox)[person]
    assert after["HasOptedOutOfEmail"] is True
    assert after["CDP_Fundraising_Consent__c"] is False and after["CDP_Course_Messages_Consent__c"] is False
    assert after["Email"] == before["Email"]  # no contact details sent for someone no longer eligible


def test_a_push_that_does_not_read_back_as_sent_is_not_reconciled(
    run_push, synced: str, crm_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes = crm_sandbox.apis.salesforce_writes
    original = writes.upsert

    def upsert_that_loses_a_field(sobject, field, key, values):
        # A CRM-side automation (a flow, a duplicate rule) that rewrites a name it just accepted.
        answer = original(sobject, field, key, values)
        if answer["success"] and "FirstName" in values:
            writes.records[sobject][answer["id"]]["FirstName"] = "Changed by a flow"
        return answer

    monkeypatch.setattr(writes, "upsert", upsert_that_loses_a_field)
    result = run_push("apply")

    assert result.reconciled is False
    assert result.verified < result.accepted
    assert "crm_push:reconcile" in {f.key for f in push.push_findings(synced, result.run_id, ACTOR)}


def test_erasing_a_person_removes_their_rows_from_the_push_reports_on_disk(
    run_push, synced: str, tmp_path: Path
) -> None:
    first, second = run_push("dry_run"), run_push("dry_run")
    with open(first.report_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    with psycopg.connect(synced) as conn:
        conn.execute(
            "INSERT INTO ops.crm_push_run (run_id, dry_run, report_path) VALUES ('push-elsewhere', true, %s)",
            (str(tmp_path / "on-another-worker.csv"),),
        )
        # A person whose email no one else has: a family email stays in the rows of the relatives who share
        # it, and the generator plants those (which person sorts first in the report is chance).
        person, email = conn.execute(
            "SELECT p.person_id::text, p.email FROM core.person p"
            " WHERE p.person_id = ANY(%s::uuid[]) AND p.email IS NOT NULL"
            " AND NOT EXISTS (SELECT FROM core.person o WHERE o.email = p.email AND o.person_id <> p.person_id)"
            " ORDER BY p.person_id LIMIT 1",
            (sorted({row["person_id"] for row in rows}),),
        ).fetchone()
    assert email and email in Path(first.report_path).read_text()

    result = erase_person(synced, person, "GDPR art. 17 request", ACTOR)

    assert result.counts["crm_push_reports"] == {
        "rewritten": 2,
        "not_on_this_machine": [str(tmp_path / "on-another-worker.csv")],
    }
    for report in (first, second):
        text = Path(report.report_path).read_text()
        assert person not in text and email not in text
        assert Path(report.report_path).stat().st_mode & 0o777 == 0o600
    with open(first.report_path, newline="") as handle:
        after = list(csv.DictReader(handle))
    assert after == [row for row in rows if row["person_id"] != person] and after


def test_a_large_push_goes_through_a_bulk_api_job_with_the_same_outcome(
    synced: str, crm_sandbox: SandboxServer, tmp_path: Path
) -> None:
    expected = eligible(synced, push.PUSH_PURPOSES)
    one_name = without_last_name(synced, expected)
    settings = crm_sandbox.settings("salesforce", max_attempts=2, retry_base_delay=0.01, bulk_threshold=1,
                                    bulk_poll_seconds=0)  # fmt: skip
    writer = SalesforceWriter(settings)
    try:
        result = push.push_contacts(
            synced, writer, run_id="bulk-1", actor=ACTOR, mode="apply", report_dir=tmp_path
        )
    finally:
        writer.close()

    accepted = len(expected) - len(one_name)
    assert writer.bulk_jobs == 1, "one job for the whole push instead of a call per 200 records"
    assert (result.sent, result.accepted, result.rejected, result.verified) == (
        len(expected), accepted, len(one_name), accepted
    )  # fmt: skip
    assert set(contacts(crm_sandbox)) == expected - one_name
    assert open_errors(synced) == {(person, "REQUIRED_FIELD_MISSING"): 1 for person in one_name}
    with psycopg.connect(synced) as conn:
        people = {
            row[0]: row[1:]
            for row in conn.execute(
                "SELECT person_id::text, given_name, family_name, email, phone_e164 FROM core.person"
                " WHERE person_id = ANY(%s::uuid[])",
                (sorted(expected),),
            )
        }
    for person, record in contacts(crm_sandbox).items():
        assert (record["FirstName"], record["LastName"], record["Email"], record["Phone"]) == people[person]


def test_a_learner_whose_contact_the_crm_deleted_is_not_recreated(
    run_push, synced: str, crm_sandbox: SandboxServer
) -> None:
    # The CRM's staff deleted (or merged away) the only Contact of two eligible learners; the Contact stream
    # (queryAll, revision 0022) soft-deleted those identities. Pushing would re-create what staff removed.
    expected = eligible(synced, push.PUSH_PURPOSES) - without_last_name(
        synced, eligible(synced, push.PUSH_PURPOSES)
    )
    with psycopg.connect(synced, autocommit=True) as conn:
        linked = {row[0] for row in conn.execute(
            "SELECT person_id::text FROM core.person_source_id WHERE source = %s", (push.CONTACT_SOURCE,))}  # fmt: skip
        removed = sorted(expected - linked)[:2]
        for number, person in enumerate(removed):
            conn.execute(
                "INSERT INTO core.person_source_id (source, source_record_id, person_id, deleted_at)"
                " VALUES (%s, %s, %s, now())",
                (push.CONTACT_SOURCE, f"003DELETED{number:08d}", person),
            )
    assert len(removed) == 2

    result = run_push("apply")

    assert result.deleted_in_crm == 2
    pushed = contacts(crm_sandbox)
    assert not (set(removed) & set(pushed))
    assert set(pushed) == expected - set(removed)
