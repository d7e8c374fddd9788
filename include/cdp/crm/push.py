"""Migration phase 2: push learner contact data from the warehouse into the CRM, safely.

Who is pushed (the consent rule). A learner is pushed when ``mart.outreach_eligible`` holds them for
``course_messages`` or ``fundraising`` (read as the ``cdp_outreach`` role: the view is the only way to
contact details for outreach, and the CRM is where staff run outreach). So a minor without verified
parental consent, a person of unknown age, anyone whose latest statement refused or withdrew, and an erased
person are never pushed. Someone pushed earlier who is no longer eligible gets only their consent flags
cleared and ``HasOptedOutOfEmail`` set (no contact details are sent for them).

What is pushed. ``FirstName``, ``LastName``, ``Email``, ``Phone`` (E.164), ``HasOptedOutOfEmail`` and the
two consent flags ``CDP_Course_Messages_Consent__c`` / ``CDP_Fundraising_Consent__c``, upserted by the
external id ``CDP_Person_Id__c`` = our person id (sObject Collections, 200 a request, ``allOrNone=false``).

Staff edits win. ``ops.crm_push_state`` keeps, per person, a sha256 of each field as last accepted by the
CRM, and the record's ``LastModifiedDate``/``LastModifiedById`` read back after that push. Before pushing,
the current CRM values are read: a field whose value no longer hashes to what we pushed was changed in the
CRM after our push, so it is not overwritten; it is queued in ``ops.crm_push_conflict`` (with who changed
it and when) and held until someone decides (``resolve_conflict``: ``keep_crm`` leaves the field to the
CRM for good, ``push_warehouse`` lets the next run overwrite it). A CRM value that already equals what we
would push is simply adopted (that is also how a crash between the CRM's answer and our bookkeeping heals).

Contacts staff created first (linking). A learner may already be a Contact in the CRM, created there by
staff and synced here by the ``salesforce`` contacts stream (source identity ``salesforce.contact`` = the
Contact's ``Id``), without our external id: an upsert by ``CDP_Person_Id__c`` would create a second
Contact. So before the upsert, every person with exactly one known, existing Contact that carries no
external id yet gets ``CDP_Person_Id__c`` set on that Contact by its ``Id`` (sObject Collections update);
from then on it is an ordinary update (fields staff keep and we do not push stay as they are). A person
with two or more Contacts (a duplicate in the CRM), or whose Contact carries another person's external
id, is not guessed at: queued in ``ops.crm_contact_review`` and not pushed until the CRM gives one Contact
(the next run then closes the review row); only a withdrawal of consent for someone we pushed before
still goes to that Contact. A link the CRM refuses goes to ``ops.crm_push_error`` and the
person waits (no upsert that would duplicate). Links are logged per run in ``ops.crm_contact_link``; each
batch of links writes an audit event ``crm_contact_link_batch``.

Dry run. ``dry_run=True`` reads the CRM, computes the exact field-level plan, writes it to
``ops.crm_push_change`` (hashes only) and to a CSV report with the values (``report_dir``), and sends
nothing to the CRM. ``mode="auto"`` is a dry run until one run was applied on purpose.

Errors and reconciliation. A record the CRM refuses is kept in ``ops.crm_push_error`` with its code and
message (the values we sent blanked out) and, as its state did not move, is planned again by every later
run until accepted. At the end, what was sent is reconciled with what the CRM accepted and rejected, and
the accepted records are read back and compared field by field (``verified``); any mismatch makes the run
``reconciled = false``. Each batch sent writes an audit event ``crm_push_batch``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from cdp import audit
from cdp.crm.client import COLLECTION_LIMIT, SalesforceWriter
from cdp.quality.data_alerts import Finding
from cdp.warehouse import Actor, connect

log = logging.getLogger(__name__)

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


class PushRoleError(RuntimeError):
    """The warehouse login may not act as cdp_outreach, so it may not read outreach contact details."""


class PushNotReconciled(RuntimeError):
    """What the CRM accepted does not add up to what was sent, or does not read back as sent."""


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

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# ------------------------------------------------------------------------------------------ reading
def read_desired(conn: psycopg.Connection) -> dict[str, dict[str, Any]]:
    """What the CRM should hold for each person we push (see the module docstring for who)."""
    with conn.transaction():
        try:
            conn.execute("SET LOCAL ROLE cdp_outreach")
        except psycopg.errors.InsufficientPrivilege as error:
            raise PushRoleError(
                "the warehouse login cannot SET ROLE cdp_outreach; grant it: "
                "GRANT cdp_outreach TO <login> WITH INHERIT FALSE"
            ) from error
        eligible = conn.execute(
            "SELECT person_id::text AS person_id, purpose, given_name, family_name, email, phone_e164"
            " FROM mart.outreach_eligible WHERE purpose = ANY(%s)",
            (list(PUSH_PURPOSES),),
        ).fetchall()
    learners = {
        row["person_id"]
        for row in conn.execute(
            "SELECT person_id::text AS person_id FROM core.person"
            " WHERE is_learner AND merged_into IS NULL AND erased_at IS NULL"
        )
    }
    pushed_before = {
        row["person_id"]
        for row in conn.execute("SELECT person_id::text AS person_id FROM ops.crm_push_state")
    }
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


def _state(conn: psycopg.Connection) -> dict[str, dict[str, Any]]:
    return {
        row["person_id"]: row
        for row in conn.execute(
            "SELECT person_id::text AS person_id, crm_id, field_hashes, crm_owned, crm_last_modified"
            " FROM ops.crm_push_state"
        )
    }


def _open_conflicts(conn: psycopg.Connection) -> set[tuple[str, str]]:
    return {
        (row["person_id"], row["field"])
        for row in conn.execute(
            "SELECT person_id::text AS person_id, field FROM ops.crm_push_conflict WHERE resolved_at IS NULL"
        )
    }


def read_crm(writer: SalesforceWriter, crm_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    ids = sorted(set(crm_ids))
    if not ids:
        return {}
    fields = [*PUSH_FIELDS, EXTERNAL_ID, "LastModifiedDate", "LastModifiedById"]
    return {
        record_id: record
        for record_id, record in zip(ids, writer.retrieve(SOBJECT, ids, fields), strict=True)
        if record is not None
    }


def known_contacts(conn: psycopg.Connection, people: Iterable[str]) -> dict[str, set[str]]:
    """Per person (merges followed to the survivor), the Ids of the CRM Contacts synced as theirs."""
    wanted = set(people)
    known: dict[str, set[str]] = {}
    for row in conn.execute(
        "SELECT coalesce(p.merged_into, m.person_id)::text AS person_id, m.source_record_id AS crm_id"
        " FROM core.person_source_id m JOIN core.person p ON p.person_id = m.person_id WHERE m.source = %s",
        (CONTACT_SOURCE,),
    ):
        if row["person_id"] in wanted:
            known.setdefault(row["person_id"], set()).add(row["crm_id"])
    return known


# ------------------------------------------------------------------------------------------ planning
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


# ------------------------------------------------------------------------------------------ writing
def _write_report(path: Path, changes: list[FieldChange], links: LinkPlan | None = None) -> None:
    """The run's plan with values: the link steps first (crm_value: the Contact's Id), then every field."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["person_id", "field", "change", "crm_value", "new_value"])
        for person, crm_id in sorted((links.links if links else {}).items()):
            writer.writerow([person, EXTERNAL_ID, "link", crm_id, person])
        for person, (reason, crm_ids) in sorted((links.reviews if links else {}).items()):
            writer.writerow([person, "_contact", "review", " ".join(crm_ids), reason])
        for change in changes:
            writer.writerow(
                [change.person_id, change.field, change.change, change.crm_value, change.new_value]
            )
    path.chmod(0o600)  # the values are personal data: the report is for the operator only


def erase_from_reports(paths: Iterable[str], person_ids: Collection[str]) -> dict[str, Any]:
    """Drop the rows of erased people from the push reports written earlier (their values are personal
    data): each report holding one is rewritten in place, the rest are left untouched. A report that is
    not on this machine's disk is named, for the operator to handle where it is."""
    rewritten, missing = 0, []
    for name in sorted(set(paths)):
        path = Path(name)
        if not path.is_file():
            missing.append(name)
            continue
        with path.open(newline="") as handle:
            rows = list(csv.reader(handle))
        kept = [row for row in rows[1:] if not (row and row[0] in person_ids)]
        if len(kept) == len(rows) - 1:
            continue
        partial = path.with_name(f".{path.name}.erasing")
        with partial.open("w", newline="") as handle:
            csv.writer(handle).writerows([rows[0], *kept])
        partial.chmod(0o600)
        partial.replace(path)
        rewritten += 1
    return {"rewritten": rewritten, "not_on_this_machine": missing}


def _redact(message: str, record: Mapping[str, Any]) -> str:
    for value in record.values():
        if isinstance(value, str) and value:
            message = message.replace(value, "<value>")
    return message


def _crm_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")


def push_contacts(
    url: str,
    writer: SalesforceWriter,
    *,
    run_id: str,
    actor: Actor,
    mode: str = "auto",
    report_dir: Path | None = None,
) -> PushResult:
    """One push run (dry or applied); see the module docstring."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    with connect(url, actor, autocommit=True) as conn:
        with conn.transaction():
            applied_before = conn.execute(
                "SELECT count(*) AS n FROM ops.crm_push_run WHERE NOT dry_run AND finished_at IS NOT NULL"
            ).fetchone()["n"]
        dry_run = mode == "dry_run" or (mode == "auto" and applied_before == 0)
        desired = read_desired(conn)
        with conn.transaction():
            state = _state(conn)
            open_conflicts = _open_conflicts(conn)
            known = known_contacts(conn, desired)
        crm = read_crm(
            writer,
            [row["crm_id"] for row in state.values() if row["crm_id"]]
            + [crm_id for ids in known.values() for crm_id in ids],
        )
        links = plan_links(desired, state, known, crm)
        for person in links.reviews:
            # A withdrawal still reaches the Contact we pushed before: opting out never waits for a review.
            if not (person in state and desired[person] == WITHDRAWN):
                del desired[person]
        failed_links: set[str] = set()
        linked = 0
        if not dry_run:
            _queue_reviews(conn, links, run_id)
            linked, failed_links = _link(conn, writer, links, run_id)
        for person in failed_links:
            del desired[person]
        for person, crm_id in {**links.links, **links.adopt}.items():
            if person not in failed_links:
                state = {**state, person: {"person_id": person, "crm_id": crm_id, "field_hashes": {}}}
        plan = plan_push(desired, state, crm, open_conflicts)
        result = PushResult(
            run_id=run_id,
            dry_run=dry_run,
            people_considered=len(desired),
            creates=plan.creates,
            updates=plan.updates,
            unchanged=plan.unchanged,
            fields_changed=sum(1 for c in plan.changes if c.change in ("create", "update")),
            conflicts_new=len(plan.conflicts),
            conflicts_open=plan.open_conflicts,
            links_planned=len(links.links),
            linked=linked,
            link_failed=len(failed_links),
            contacts_in_review=len(links.reviews),
        )
        if report_dir is not None:
            path = report_dir / f"crm_push_{run_id.replace(':', '_').replace('+', '_')}.csv"
            _write_report(path, plan.changes, links)
            result.report_path = str(path)
        with conn.transaction():
            conn.execute("DELETE FROM ops.crm_push_change WHERE run_id = %s", (run_id,))
            conn.execute(
                "INSERT INTO ops.crm_push_run (run_id, dry_run, people_considered, creates, updates, unchanged,"
                " fields_changed, conflicts_new, conflicts_open, report_path, links_planned, linked, link_failed,"
                " contacts_in_review)"
                " VALUES (%(run_id)s, %(dry_run)s, %(people_considered)s, %(creates)s, %(updates)s, %(unchanged)s,"
                " %(fields_changed)s, %(conflicts_new)s, %(conflicts_open)s, %(report_path)s, %(links_planned)s,"
                " %(linked)s, %(link_failed)s, %(contacts_in_review)s)"
                " ON CONFLICT (run_id) DO UPDATE SET dry_run = excluded.dry_run, started_at = now(),"
                " finished_at = NULL, people_considered = excluded.people_considered, creates = excluded.creates,"
                " updates = excluded.updates, unchanged = excluded.unchanged,"
                " fields_changed = excluded.fields_changed, conflicts_new = excluded.conflicts_new,"
                " conflicts_open = excluded.conflicts_open, report_path = excluded.report_path,"
                " links_planned = excluded.links_planned, linked = excluded.linked,"
                " link_failed = excluded.link_failed, contacts_in_review = excluded.contacts_in_review, sent = 0,"
                " accepted = 0, rejected = 0, verified = 0, reconciled = NULL",
                result.as_dict(),
            )
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO ops.crm_push_change (run_id, person_id, field, change, crm_hash, new_hash)"
                    " VALUES (%s, %s, %s, %s, %s, %s)",
                    [(run_id, c.person_id, c.field, c.change, c.crm_hash, c.new_hash) for c in plan.changes],
                )
            if dry_run:
                conn.execute("DELETE FROM ops.crm_contact_link WHERE run_id = %s", (run_id,))
                with conn.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO ops.crm_contact_link (run_id, person_id, crm_id, outcome)"
                        " VALUES (%s, %s, %s, 'planned')",
                        [(run_id, person, crm_id) for person, crm_id in sorted(links.links.items())],
                    )
                audit.record_event(conn, "crm_push_dry_run", "crm_push_run", run_id, _counts(result))
                conn.execute("UPDATE ops.crm_push_run SET finished_at = now() WHERE run_id = %s", (run_id,))
        if dry_run:
            log.info("crm push dry run %s: %s", run_id, _counts(result))
            return result
        _queue_conflicts(conn, plan, run_id)
        _adopt(conn, plan, run_id)
        _send(conn, writer, plan, result)
        _finish(conn, result)
    log.info("crm push %s: %s", run_id, _counts(result))
    return result


def _counts(result: PushResult) -> dict[str, Any]:
    return {k: v for k, v in result.as_dict().items() if k not in ("run_id", "report_path")}


def _queue_conflicts(conn: psycopg.Connection, plan: PushPlan, run_id: str) -> None:
    if not plan.conflicts:
        return
    with conn.transaction(), conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO ops.crm_push_conflict (person_id, field, crm_id, pushed_hash, crm_hash, warehouse_hash,"
            " crm_last_modified, crm_last_modified_by, detected_run_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (person_id, field) WHERE resolved_at IS NULL DO NOTHING",
            [
                (
                    c.person_id,
                    c.field,
                    c.crm_id,
                    c.pushed_hash,
                    c.crm_hash,
                    c.warehouse_hash,
                    _crm_time(c.crm_last_modified),
                    c.crm_last_modified_by,
                    run_id,
                )
                for c in plan.conflicts
            ],
        )


def _queue_reviews(conn: psycopg.Connection, links: LinkPlan, run_id: str) -> None:
    """Open a review row per person the CRM gives no single Contact for; close the rows that cleared."""
    with conn.transaction(), conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO ops.crm_contact_review AS r (person_id, reason, crm_ids, detected_run_id, last_run_id)"
            " VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (person_id) WHERE resolved_at IS NULL DO UPDATE SET reason = excluded.reason,"
            " crm_ids = excluded.crm_ids, last_run_id = excluded.last_run_id"
            " WHERE (r.reason, r.crm_ids) IS DISTINCT FROM (excluded.reason, excluded.crm_ids)",
            [
                (person, reason, ids, run_id, run_id)
                for person, (reason, ids) in sorted(links.reviews.items())
            ],
        )
        cursor.execute(
            "UPDATE ops.crm_contact_review SET resolved_at = now(), resolved_run_id = %s"
            " WHERE resolved_at IS NULL AND NOT (person_id = ANY(%s::uuid[]))",
            (run_id, sorted(links.reviews)),
        )


def _link(
    conn: psycopg.Connection, writer: SalesforceWriter, links: LinkPlan, run_id: str
) -> tuple[int, set[str]]:
    """Set our external id on the Contacts staff created (by Id); record the state so the upsert finds them."""
    state_sql = (
        "INSERT INTO ops.crm_push_state (person_id, external_id, crm_id, last_run_id)"
        " VALUES (%s::uuid, %s::text, %s, %s) ON CONFLICT (person_id) DO NOTHING"
    )
    if links.adopt:
        with conn.transaction(), conn.cursor() as cursor:
            cursor.executemany(
                state_sql, [(p, p, crm_id, run_id) for p, crm_id in sorted(links.adopt.items())]
            )
    people = sorted(links.links)
    linked, failed = 0, set()
    for start in range(0, len(people), COLLECTION_LIMIT):
        batch = people[start : start + COLLECTION_LIMIT]
        answers = writer.update(SOBJECT, [{"id": links.links[p], EXTERNAL_ID: p} for p in batch])
        with conn.transaction(), conn.cursor() as cursor:
            ok = [p for p, a in zip(batch, answers, strict=True) if a.get("success")]
            refused = [(p, a) for p, a in zip(batch, answers, strict=True) if not a.get("success")]
            cursor.executemany(state_sql, [(p, p, links.links[p], run_id) for p in ok])
            cursor.executemany(
                "INSERT INTO ops.crm_contact_link (run_id, person_id, crm_id, outcome, error_code, linked_at)"
                " VALUES (%s, %s, %s, %s, %s, CASE WHEN %s::boolean THEN now() END)"
                " ON CONFLICT (run_id, person_id) DO UPDATE SET outcome = excluded.outcome,"
                " error_code = excluded.error_code, linked_at = excluded.linked_at",
                [(run_id, p, links.links[p], "linked", None, True) for p in ok]
                + [
                    (run_id, p, links.links[p], "failed", code, False)
                    for p, a in refused
                    for code in [_error_code((a.get("errors") or [{}])[0])]
                ],
            )
            if ok:
                cursor.execute(
                    "UPDATE ops.crm_push_error SET resolved_at = now(), resolved_run_id = %s"
                    " WHERE resolved_at IS NULL AND person_id = ANY(%s::uuid[])",
                    (run_id, ok),
                )
            for person, answer in refused:
                _keep_errors(cursor, run_id, person, answer, {EXTERNAL_ID: person})
            audit.record_event(
                conn,
                "crm_contact_link_batch",
                "crm_push_run",
                run_id,
                {
                    "batch": start // COLLECTION_LIMIT,
                    "sent": len(batch),
                    "linked": len(ok),
                    "refused": len(refused),
                },
            )
        linked += len(ok)
        failed.update(p for p, _ in refused)
    return linked, failed


def _error_code(error: Mapping[str, Any]) -> str:
    return str(error.get("statusCode") or error.get("errorCode") or "UNKNOWN")


def _keep_errors(
    cursor: psycopg.Cursor, run_id: str, person: str, answer: Mapping[str, Any], record: Mapping[str, Any]
) -> None:
    """A record the CRM refused, one open row per error code (the values we sent blanked out)."""
    errors = answer.get("errors") or [{"statusCode": "UNKNOWN", "message": "no error given"}]
    for error in errors:
        cursor.execute(
            "INSERT INTO ops.crm_push_error AS e (first_run_id, last_run_id, person_id, error_code,"
            " message, fields) VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (person_id, error_code) WHERE resolved_at IS NULL DO UPDATE"
            " SET attempts = e.attempts + 1, last_run_id = excluded.last_run_id,"
            " last_failed_at = now(), message = excluded.message, fields = excluded.fields",
            (
                run_id,
                run_id,
                person,
                _error_code(error),
                _redact(str(error.get("message") or ""), record),
                [str(f) for f in error.get("fields") or []],
            ),
        )


def _adopt(conn: psycopg.Connection, plan: PushPlan, run_id: str) -> None:
    if not plan.adopted:
        return
    with conn.transaction(), conn.cursor() as cursor:
        cursor.executemany(
            "UPDATE ops.crm_push_state SET field_hashes = field_hashes || %s::jsonb, last_run_id = %s"
            " WHERE person_id = %s",
            [(json.dumps(hashes), run_id, person) for person, hashes in plan.adopted.items()],
        )


def _send(conn: psycopg.Connection, writer: SalesforceWriter, plan: PushPlan, result: PushResult) -> None:
    people = sorted(plan.records)
    for start in range(0, len(people), COLLECTION_LIMIT):
        batch = people[start : start + COLLECTION_LIMIT]
        records = [{EXTERNAL_ID: person, **plan.records[person]} for person in batch]
        answers = writer.upsert(SOBJECT, EXTERNAL_ID, records)
        accepted = {person: a["id"] for person, a in zip(batch, answers, strict=True) if a.get("success")}
        rejected = [
            (person, a, r)
            for person, a, r in zip(batch, answers, records, strict=True)
            if not a.get("success")
        ]
        read_back = read_crm(writer, accepted.values())
        verified = 0
        with conn.transaction():
            for person, crm_id in accepted.items():
                record = read_back.get(crm_id) or {}
                sent = plan.records[person]
                matches = all(value_hash(record.get(k)) == value_hash(v) for k, v in sent.items())
                verified += matches
                conn.execute(
                    "INSERT INTO ops.crm_push_state AS s (person_id, external_id, crm_id, field_hashes,"
                    " crm_last_modified, crm_last_modified_by, last_pushed_at, last_run_id)"
                    " VALUES (%(person)s::uuid, %(person)s::text, %(crm_id)s, %(hashes)s::jsonb, %(modified)s, %(by)s, now(),"
                    " %(run)s)"
                    " ON CONFLICT (person_id) DO UPDATE SET crm_id = excluded.crm_id,"
                    " field_hashes = s.field_hashes || excluded.field_hashes,"
                    " crm_last_modified = excluded.crm_last_modified,"
                    " crm_last_modified_by = excluded.crm_last_modified_by, last_pushed_at = now(),"
                    " last_run_id = excluded.last_run_id",
                    {
                        "person": person,
                        "crm_id": crm_id,
                        "hashes": json.dumps({k: value_hash(v) for k, v in sent.items()}),
                        "modified": _crm_time(record.get("LastModifiedDate")),
                        "by": record.get("LastModifiedById"),
                        "run": result.run_id,
                    },
                )
            if accepted:
                conn.execute(
                    "UPDATE ops.crm_push_error SET resolved_at = now(), resolved_run_id = %s"
                    " WHERE resolved_at IS NULL AND person_id = ANY(%s::uuid[])",
                    (result.run_id, list(accepted)),
                )
            with conn.cursor() as cursor:
                for person, answer, record in rejected:
                    _keep_errors(cursor, result.run_id, person, answer, record)
            counts = {
                "sent": len(batch),
                "accepted": len(accepted),
                "rejected": len(rejected),
                "verified": verified,
            }
            audit.record_event(
                conn,
                "crm_push_batch",
                "crm_push_run",
                result.run_id,
                {"batch": start // COLLECTION_LIMIT, **counts},
            )
        result.sent += len(batch)
        result.accepted += len(accepted)
        result.rejected += len(rejected)
        result.verified += verified


def _finish(conn: psycopg.Connection, result: PushResult) -> None:
    result.reconciled = (
        result.sent == result.accepted + result.rejected and result.verified == result.accepted
    )
    with conn.transaction():
        conn.execute(
            "UPDATE ops.crm_push_run SET finished_at = now(), sent = %s, accepted = %s, rejected = %s,"
            " verified = %s, reconciled = %s WHERE run_id = %s",
            (
                result.sent,
                result.accepted,
                result.rejected,
                result.verified,
                result.reconciled,
                result.run_id,
            ),
        )


def resolve_conflict(url: str, conflict_id: int, decision: str, actor: Actor) -> None:
    """A person's decision on a queued conflict (audited): keep the CRM's value, or let ours overwrite it."""
    if decision not in ("keep_crm", "push_warehouse"):
        raise ValueError("decision must be keep_crm or push_warehouse")
    with connect(url, actor, autocommit=True) as conn, conn.transaction():
        row = conn.execute(
            "UPDATE ops.crm_push_conflict SET resolved_at = now(), resolution = %s, resolved_by = %s"
            " WHERE conflict_id = %s AND resolved_at IS NULL RETURNING person_id, field, crm_hash",
            (decision, actor.name, conflict_id),
        ).fetchone()
        if row is None:
            raise LookupError(f"no open conflict {conflict_id}")
        if decision == "keep_crm":
            conn.execute(
                "UPDATE ops.crm_push_state SET crm_owned = array_append(crm_owned, %s)"
                " WHERE person_id = %s AND NOT (%s = ANY(crm_owned))",
                (row["field"], row["person_id"], row["field"]),
            )
        elif row["field"] == RECORD_GONE:  # recreate the contact: forget the deleted record
            conn.execute("DELETE FROM ops.crm_push_state WHERE person_id = %s", (row["person_id"],))
        else:  # the CRM's current value counts as ours, so the next run sees an ordinary update
            conn.execute(
                "UPDATE ops.crm_push_state"
                " SET field_hashes = field_hashes || jsonb_build_object(%s::text, %s::text) WHERE person_id = %s",
                (row["field"], row["crm_hash"], row["person_id"]),
            )
        audit.record_event(
            conn,
            "crm_push_conflict_resolved",
            "crm_push_conflict",
            str(conflict_id),
            {"field": row["field"], "decision": decision},
        )


def push_findings(url: str, run_id: str, actor: Actor) -> list[Finding]:
    """Data alerts of a push run (key prefix ``crm_push:``): not reconciled, open conflicts, open errors,
    people held back because the CRM has several Contacts for them."""
    findings = []
    with connect(url, actor, autocommit=True) as conn:
        run = conn.execute("SELECT * FROM ops.crm_push_run WHERE run_id = %s", (run_id,)).fetchone()
        conflicts = conn.execute(
            "SELECT count(*) AS n FROM ops.crm_push_conflict WHERE resolved_at IS NULL"
        ).fetchone()["n"]
        errors = conn.execute(
            "SELECT error_code, count(DISTINCT person_id) AS n FROM ops.crm_push_error WHERE resolved_at IS NULL"
            " GROUP BY 1 ORDER BY 2 DESC, 1"
        ).fetchall()
        reviews = conn.execute(
            "SELECT count(*) AS n FROM ops.crm_contact_review WHERE resolved_at IS NULL"
        ).fetchone()["n"]
    if run is not None and run["reconciled"] is False:
        findings.append(
            Finding(
                "crm_push:reconcile",
                f"{run['sent']}|{run['accepted']}|{run['rejected']}|{run['verified']}",
                f"*CRM push not reconciled*: sent {run['sent']}, accepted {run['accepted']}, rejected "
                f"{run['rejected']}, read back as sent {run['verified']}.\n  repair: compare ops.crm_push_state "
                "with the CRM for the run's people; re-run the DAG (it re-plans from the CRM's values)",
            )
        )
    if conflicts:
        findings.append(
            Finding(
                "crm_push:conflicts",
                str(conflicts),
                f"*{conflicts} CRM fields* were edited in the CRM after our last push and are held, not "
                "overwritten (ops.crm_push_conflict).\n  repair: decide each with `cdp crm resolve CONFLICT_ID "
                "keep_crm|push_warehouse`",
            )
        )
    if reviews:
        findings.append(
            Finding(
                "crm_push:contact_review",
                str(reviews),
                f"*{reviews} learners* are not pushed: the CRM has two or more Contacts for each, or their "
                "Contact carries another person's id (ops.crm_contact_review).\n  repair: merge the duplicate "
                "Contacts in Salesforce (the next run links the one left and closes the review)",
            )
        )
    if errors:
        total = sum(row["n"] for row in errors)
        top = ", ".join(f"{row['error_code']} {row['n']}" for row in errors[:3])
        findings.append(
            Finding(
                "crm_push:errors",
                "|".join(f"{row['error_code']}={row['n']}" for row in errors),
                f"*{total} people* refused by the CRM wait in ops.crm_push_error ({top}); every run retries "
                "them.\n  repair: fix the value in the source system (the sync brings it here)",
            )
        )
    return findings
