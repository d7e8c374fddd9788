"""The CRM push's planning, on plain data: who gets which fields, what staff changed, which Contact to link.

No I/O here: `cdp.crm.push` reads the warehouse and the CRM, hands the values in, and sends the plan.
The rules themselves are described in `cdp.crm.push`'s docstring.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SOBJECT = "Contact"
EXTERNAL_ID = "CDP_Person_Id__c"
CONTACT_FIELDS = ("FirstName", "LastName", "Email", "Phone")
CONSENT_FIELDS = ("CDP_Course_Messages_Consent__c", "CDP_Fundraising_Consent__c", "HasOptedOutOfEmail")
PUSH_FIELDS = CONTACT_FIELDS + CONSENT_FIELDS
PUSH_PURPOSES = ("course_messages", "fundraising")
WITHDRAWN = {
    "CDP_Course_Messages_Consent__c": False,
    "CDP_Fundraising_Consent__c": False,
    "HasOptedOutOfEmail": True,
}
RECORD_GONE = "_record"  # conflict "field" for a contact deleted in the CRM after our push
CONTACT_SOURCE = "salesforce.contact"  # the source identity of a Contact synced from the CRM (its Id)
MODES = ("auto", "dry_run", "apply")


def value_hash(value: Any) -> str:
    """The fingerprint kept of a field's value (the value itself is not stored in ops)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class FieldChange:
    person_id: str
    field: str
    change: str  # create | update | conflict | held
    crm_value: Any
    new_value: Any

    @property
    def crm_hash(self) -> str | None:
        return None if self.change == "create" else value_hash(self.crm_value)

    @property
    def new_hash(self) -> str:
        return value_hash(self.new_value)


@dataclass
class Conflict:
    person_id: str
    field: str
    crm_id: str | None
    pushed_hash: str | None
    crm_hash: str | None
    warehouse_hash: str | None
    crm_last_modified: str | None
    crm_last_modified_by: str | None


@dataclass
class PushPlan:
    desired: dict[str, dict[str, Any]]
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # person -> fields to send
    changes: list[FieldChange] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    adopted: dict[str, dict[str, str]] = field(default_factory=dict)  # person -> field -> hash
    creates: int = 0
    updates: int = 0
    unchanged: int = 0
    open_conflicts: int = 0


@dataclass
class LinkPlan:
    links: dict[str, str] = field(default_factory=dict)  # person -> Contact Id to set our external id on
    adopt: dict[str, str] = field(default_factory=dict)  # person -> Contact Id already carrying our id
    reviews: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # person -> (reason, Ids)


@dataclass
class PushResult:
    run_id: str
    dry_run: bool
    people_considered: int
    creates: int
    updates: int
    unchanged: int
    fields_changed: int
    conflicts_new: int
    conflicts_open: int
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    verified: int = 0
    reconciled: bool | None = None
    report_path: str | None = None
    links_planned: int = 0
    linked: int = 0
    link_failed: int = 0
    contacts_in_review: int = 0
    deleted_in_crm: int = 0  # people left out: the CRM deleted (or merged away) every Contact of theirs

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def desired_records(
    eligible: Iterable[Mapping[str, Any]], learners: set[str], pushed_before: set[str]
) -> dict[str, dict[str, Any]]:
    """What the CRM should hold per person: every eligible learner with a flag per purpose they may be
    contacted for, and the consent withdrawal for anyone pushed before who is no longer eligible."""
    desired: dict[str, dict[str, Any]] = {}
    for row in eligible:
        person = row["person_id"]
        if person not in learners:
            continue
        record = desired.setdefault(
            person,
            {
                "FirstName": row["given_name"],
                "LastName": row["family_name"],
                "Email": row["email"],
                "Phone": row["phone_e164"],
                "CDP_Course_Messages_Consent__c": False,
                "CDP_Fundraising_Consent__c": False,
                "HasOptedOutOfEmail": False,
            },
        )
        flag = (
            "CDP_Course_Messages_Consent__c"
            if row["purpose"] == "course_messages"
            else "CDP_Fundraising_Consent__c"
        )
        record[flag] = True
    for person in pushed_before - set(desired):
        desired[person] = dict(WITHDRAWN)
    return desired


def plan_links(
    desired: Iterable[str],
    state: Mapping[str, Mapping[str, Any]],
    known: Mapping[str, set[str]],
    crm: Mapping[str, Mapping[str, Any]],
) -> LinkPlan:
    """Which existing Contact gets our external id, and who waits for a person to sort out the CRM."""
    plan = LinkPlan()
    for person in sorted(desired):
        ids = set(known.get(person, ()))
        own = (state.get(person) or {}).get("crm_id")
        if own:
            ids.add(own)
        existing = sorted(crm_id for crm_id in ids if crm_id in crm)  # a deleted Contact does not count
        if len(existing) >= 2:
            plan.reviews[person] = ("duplicate_contacts", existing)
            continue
        if not existing or person in state:
            continue
        holder = crm[existing[0]].get(EXTERNAL_ID)
        if holder in (None, ""):
            plan.links[person] = existing[0]
        elif holder == person:  # linked by an earlier run whose bookkeeping did not commit
            plan.adopt[person] = existing[0]
        else:
            plan.reviews[person] = ("external_id_taken", existing)
    return plan


def plan_push(
    desired: Mapping[str, Mapping[str, Any]],
    state: Mapping[str, Mapping[str, Any]],
    crm: Mapping[str, Mapping[str, Any]],
    open_conflicts: set[tuple[str, str]],
) -> PushPlan:
    """Field by field: create, update, leave alone, or hold (a staff edit in the CRM, or an open conflict)."""
    plan = PushPlan(desired={k: dict(v) for k, v in desired.items()})
    for person in sorted(desired):
        wanted = desired[person]
        known = state.get(person)
        if known is None:
            plan.records[person] = dict(wanted)
            plan.changes += [FieldChange(person, f, "create", None, v) for f, v in wanted.items()]
            plan.creates += 1
            continue
        owned = set(known.get("crm_owned") or ())
        record = crm.get(known["crm_id"] or "")
        if RECORD_GONE in owned:
            continue
        if record is None:
            if (person, RECORD_GONE) in open_conflicts:
                plan.open_conflicts += 1
            else:
                plan.conflicts.append(
                    Conflict(person, RECORD_GONE, known["crm_id"], None, None, None, None, None)
                )
                plan.changes.append(FieldChange(person, RECORD_GONE, "conflict", None, None))
            continue
        hashes: Mapping[str, str] = known["field_hashes"] or {}
        to_send: dict[str, Any] = {}
        for name, value in wanted.items():
            crm_value = record.get(name)
            new_hash, crm_hash, pushed = value_hash(value), value_hash(crm_value), hashes.get(name)
            if name in owned:
                continue
            if (person, name) in open_conflicts:
                plan.open_conflicts += 1
                if new_hash != crm_hash:
                    plan.changes.append(FieldChange(person, name, "held", crm_value, value))
                continue
            if crm_hash == new_hash:
                if pushed != new_hash:  # the CRM already holds our value: adopt it, send nothing
                    plan.adopted.setdefault(person, {})[name] = new_hash
                continue
            if pushed is not None and crm_hash != pushed:
                plan.conflicts.append(
                    Conflict(
                        person,
                        name,
                        known["crm_id"],
                        pushed,
                        crm_hash,
                        new_hash,
                        record.get("LastModifiedDate"),
                        record.get("LastModifiedById"),
                    )
                )
                plan.changes.append(FieldChange(person, name, "conflict", crm_value, value))
                continue
            to_send[name] = value
            plan.changes.append(FieldChange(person, name, "update", crm_value, value))
        if to_send:
            plan.records[person] = to_send
            plan.updates += 1
        else:
            plan.unchanged += 1
    return plan


def redact(message: str, record: Mapping[str, Any]) -> str:
    """A CRM error message with every value we sent blanked out."""
    for value in record.values():
        if isinstance(value, str) and value:
            message = message.replace(value, "<value>")
    return message


def error_code(error: Mapping[str, Any]) -> str:
    return str(error.get("statusCode") or error.get("errorCode") or "UNKNOWN")


def crm_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")


def is_reconciled(result: PushResult) -> bool:
    """Everything sent was either accepted or rejected, and every accepted record read back as sent."""
    return result.sent == result.accepted + result.rejected and result.verified == result.accepted
