"""The CRM push's planning on plain data, without a warehouse or a CRM: who is pushed, which fields are
sent, which staff edits are held, which Contact is linked, and what breaking each rule would let through."""

from __future__ import annotations

import csv
from pathlib import Path

from cdp.crm import plan, reports
from cdp.crm.plan import EXTERNAL_ID, RECORD_GONE, WITHDRAWN, FieldChange, LinkPlan, value_hash

ADA = {
    "FirstName": "Ada", "LastName": "Lovelace", "Email": "ada@example.org", "Phone": "+447700900001",
    "CDP_Course_Messages_Consent__c": True, "CDP_Fundraising_Consent__c": False, "HasOptedOutOfEmail": False,
}  # fmt: skip


def eligible(person: str, purpose: str, **values) -> dict:
    return {
        "person_id": person, "purpose": purpose, "given_name": "Ada", "family_name": "Lovelace",
        "email": "ada@example.org", "phone_e164": "+447700900001", **values,
    }  # fmt: skip


def pushed(crm_id: str, values: dict, *, owned=()) -> dict:
    """The push state after `values` were accepted for the record `crm_id`."""
    return {
        "crm_id": crm_id,
        "field_hashes": {k: value_hash(v) for k, v in values.items()},
        "crm_owned": list(owned),
    }


# ------------------------------------------------------------------------------------------------ who
def test_each_purpose_a_learner_may_be_contacted_for_sets_its_flag() -> None:
    desired = plan.desired_records(
        [eligible("p1", "course_messages"), eligible("p1", "fundraising"), eligible("p2", "fundraising")],
        learners={"p1", "p2"},
        pushed_before=set(),
    )
    assert desired["p1"]["CDP_Course_Messages_Consent__c"] and desired["p1"]["CDP_Fundraising_Consent__c"]
    assert not desired["p2"]["CDP_Course_Messages_Consent__c"] and desired["p2"]["CDP_Fundraising_Consent__c"]
    assert desired["p1"]["Email"] == "ada@example.org" and not desired["p1"]["HasOptedOutOfEmail"]


def test_only_learners_are_pushed_and_those_pushed_before_get_a_withdrawal_only() -> None:
    desired = plan.desired_records(
        [eligible("donor", "fundraising"), eligible("learner", "course_messages")],
        learners={"learner", "gone"},
        pushed_before={"gone", "learner"},
    )
    assert set(desired) == {"learner", "gone"}
    assert desired["gone"] == WITHDRAWN
    assert "Email" not in desired["gone"], "no contact details for someone no longer eligible"


# ------------------------------------------------------------------------------------------------ fields
def test_a_new_person_is_created_with_every_field() -> None:
    result = plan.plan_push({"p1": ADA}, state={}, crm={}, open_conflicts=set())
    assert result.records == {"p1": ADA} and result.creates == 1
    assert {(c.field, c.change) for c in result.changes} == {(f, "create") for f in ADA}
    assert all(c.crm_hash is None for c in result.changes)


def test_only_fields_that_differ_are_sent() -> None:
    crm = {"003A": {**ADA, "LastModifiedDate": None}}
    wanted = {**ADA, "Phone": "+447700900002"}
    result = plan.plan_push({"p1": wanted}, {"p1": pushed("003A", ADA)}, crm, set())
    assert result.records == {"p1": {"Phone": "+447700900002"}}
    assert (result.updates, result.unchanged, result.conflicts) == (1, 0, [])
    assert [(c.field, c.change, c.crm_value) for c in result.changes] == [
        ("Phone", "update", "+447700900001")
    ]


def test_nothing_is_sent_when_the_crm_already_holds_our_values() -> None:
    result = plan.plan_push({"p1": ADA}, {"p1": pushed("003A", ADA)}, {"003A": dict(ADA)}, set())
    assert (result.records, result.unchanged, result.changes) == ({}, 1, [])


def test_a_value_the_crm_already_holds_is_adopted_not_sent() -> None:
    before = {**ADA, "Email": "old@example.org"}
    result = plan.plan_push({"p1": ADA}, {"p1": pushed("003A", before)}, {"003A": dict(ADA)}, set())
    assert result.records == {}
    assert result.adopted == {"p1": {"Email": value_hash("ada@example.org")}}


def test_a_staff_edit_is_held_as_a_conflict_not_overwritten() -> None:
    crm = {"003A": {**ADA, "Email": "staff@example.org", "LastModifiedDate": "t", "LastModifiedById": "005S"}}
    wanted = {**ADA, "Email": "new@example.org"}
    result = plan.plan_push({"p1": wanted}, {"p1": pushed("003A", ADA)}, crm, set())
    assert result.records == {}, "the staff edit would be overwritten"
    [conflict] = result.conflicts
    assert (conflict.field, conflict.crm_id, conflict.crm_last_modified_by) == ("Email", "003A", "005S")
    assert conflict.pushed_hash == value_hash("ada@example.org")
    assert conflict.crm_hash == value_hash("staff@example.org")
    assert conflict.warehouse_hash == value_hash("new@example.org")
    assert [(c.field, c.change) for c in result.changes] == [("Email", "conflict")]


def test_an_open_conflict_holds_the_field_and_a_field_kept_by_the_crm_is_never_sent() -> None:
    crm = {"003A": {**ADA, "Email": "staff@example.org", "Phone": "+440000"}}
    wanted = {**ADA, "Email": "new@example.org", "Phone": "+449999"}
    state = {"p1": pushed("003A", ADA, owned=["Phone"])}
    result = plan.plan_push({"p1": wanted}, state, crm, {("p1", "Email")})
    assert result.records == {} and result.conflicts == []
    assert result.open_conflicts == 1
    assert [(c.field, c.change) for c in result.changes] == [("Email", "held")]


def test_a_contact_deleted_in_the_crm_is_a_conflict_once_then_left_alone() -> None:
    state = {"p1": pushed("003A", ADA)}
    first = plan.plan_push({"p1": ADA}, state, crm={}, open_conflicts=set())
    assert [(c.field, c.crm_id) for c in first.conflicts] == [(RECORD_GONE, "003A")]
    assert first.records == {}, "a deleted contact would be recreated without a decision"
    again = plan.plan_push({"p1": ADA}, state, crm={}, open_conflicts={("p1", RECORD_GONE)})
    assert (again.conflicts, again.open_conflicts) == ([], 1)
    kept = plan.plan_push({"p1": ADA}, {"p1": pushed("003A", ADA, owned=[RECORD_GONE])}, {}, set())
    assert (kept.records, kept.conflicts, kept.changes) == ({}, [], [])


# ------------------------------------------------------------------------------------------------ linking
def test_a_single_contact_without_our_id_is_linked() -> None:
    links = plan.plan_links(["p1"], state={}, known={"p1": {"003A"}}, crm={"003A": {EXTERNAL_ID: None}})
    assert (links.links, links.adopt, links.reviews) == ({"p1": "003A"}, {}, {})


def test_a_contact_carrying_our_id_is_adopted_and_anothers_id_is_reviewed() -> None:
    ours = plan.plan_links(["p1"], {}, {"p1": {"003A"}}, {"003A": {EXTERNAL_ID: "p1"}})
    assert ours.adopt == {"p1": "003A"} and ours.links == {}
    theirs = plan.plan_links(["p1"], {}, {"p1": {"003A"}}, {"003A": {EXTERNAL_ID: "p2"}})
    assert theirs.reviews == {"p1": ("external_id_taken", ["003A"])} and theirs.links == {}


def test_two_contacts_for_one_person_are_reviewed_not_guessed() -> None:
    crm = {"003A": {EXTERNAL_ID: None}, "003B": {EXTERNAL_ID: None}}
    links = plan.plan_links(["p1"], {}, {"p1": {"003A", "003B"}}, crm)
    assert (links.links, links.reviews) == ({}, {"p1": ("duplicate_contacts", ["003A", "003B"])})
    # The Contact we pushed to counts too.
    state = {"p1": {"crm_id": "003A"}}
    links = plan.plan_links(["p1"], state, {"p1": {"003B"}}, crm)
    assert links.reviews == {"p1": ("duplicate_contacts", ["003A", "003B"])}
    assert links.links == {}


def test_a_deleted_contact_does_not_count_and_a_pushed_person_is_not_relinked() -> None:
    links = plan.plan_links(["p1"], {}, {"p1": {"003A", "003GONE"}}, {"003A": {EXTERNAL_ID: ""}})
    assert links.links == {"p1": "003A"}
    again = plan.plan_links(["p1"], {"p1": {"crm_id": "003A"}}, {"p1": {"003A"}}, {"003A": {EXTERNAL_ID: ""}})
    assert (again.links, again.reviews) == ({}, {})


# ------------------------------------------------------------------------------------------------ answers
def test_crm_error_messages_lose_the_values_we_sent() -> None:
    message = plan.redact(
        "invalid email: ada@example.org for Ada", {"Email": "ada@example.org", "Flag": True}
    )
    assert message == "invalid email: <value> for Ada"
    assert plan.error_code({"statusCode": "INVALID_EMAIL_ADDRESS"}) == "INVALID_EMAIL_ADDRESS"
    assert plan.error_code({"errorCode": "X"}) == "X" and plan.error_code({}) == "UNKNOWN"


def test_a_run_is_reconciled_only_when_every_record_is_accounted_for_and_read_back() -> None:
    result = plan.PushResult("r", False, 3, 3, 0, 0, 21, 0, 0, sent=3, accepted=2, rejected=1, verified=2)
    assert plan.is_reconciled(result)
    result.verified = 1
    assert not plan.is_reconciled(result)
    result.verified, result.rejected = 2, 0
    assert not plan.is_reconciled(result)


# ------------------------------------------------------------------------------------------------ reports
def test_the_report_lists_links_reviews_then_fields_for_the_operator_only(tmp_path: Path) -> None:
    path = reports.report_path(tmp_path / "crm_push", "manual__2026-01-01T00:00:00+00:00")
    assert path.name == "crm_push_manual__2026-01-01T00_00_00_00_00.csv"
    links = LinkPlan(links={"p1": "003A"}, reviews={"p2": ("duplicate_contacts", ["003B", "003C"])})
    reports.write_report(path, [FieldChange("p1", "Email", "update", "old@x", "new@x")], links)
    rows = list(csv.reader(path.open()))
    assert rows == [
        ["person_id", "field", "change", "crm_value", "new_value"],
        ["p1", EXTERNAL_ID, "link", "003A", "p1"],
        ["p2", "_contact", "review", "003B 003C", "duplicate_contacts"],
        ["p1", "Email", "update", "old@x", "new@x"],
    ]
    assert path.stat().st_mode & 0o777 == 0o600


def test_erasing_rewrites_only_the_reports_that_name_the_person(tmp_path: Path) -> None:
    named, other = tmp_path / "a.csv", tmp_path / "b.csv"
    reports.write_report(
        named,
        [FieldChange("p1", "Email", "create", None, "x"), FieldChange("p2", "Email", "create", None, "y")],
    )
    reports.write_report(other, [FieldChange("p3", "Email", "create", None, "z")])
    before = other.stat().st_mtime_ns
    result = reports.erase_from_reports([str(named), str(other), str(tmp_path / "elsewhere.csv")], {"p1"})
    assert result == {"rewritten": 1, "not_on_this_machine": [str(tmp_path / "elsewhere.csv")]}
    assert [row[0] for row in csv.reader(named.open())] == ["person_id", "p2"]
    assert other.stat().st_mtime_ns == before
    assert named.stat().st_mode & 0o777 == 0o600
