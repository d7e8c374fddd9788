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

import functools
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import psycopg

from cdp import audit
from cdp.crm.client import COLLECTION_LIMIT, SalesforceWriter
from cdp.crm.plan import (
    CONTACT_SOURCE,
    EXTERNAL_ID,
    MODES,
    PUSH_FIELDS,
    PUSH_PURPOSES,
    RECORD_GONE,
    SOBJECT,
    WITHDRAWN,
    LinkPlan,
    PushPlan,
    PushResult,
    crm_time,
    desired_records,
    error_code,
    is_reconciled,
    plan_links,
    plan_push,
    redact,
    value_hash,
)
from cdp.crm.reports import report_path, write_report
from cdp.paths import SQL_DIR
from cdp.quality.data_alerts import Finding, alert_once
from cdp.warehouse import Actor, connect

log = logging.getLogger(__name__)

CRM_SQL = SQL_DIR / "crm"


@functools.cache
def _sql(name: str) -> str:
    return (CRM_SQL / name).read_text()


class PushRoleError(RuntimeError):
    """The warehouse login may not act as cdp_outreach, so it may not read outreach contact details."""


class PushNotReconciled(RuntimeError):
    """What the CRM accepted does not add up to what was sent, or does not read back as sent."""


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
    return desired_records(eligible, learners, pushed_before)


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
    """Per person (merges followed to the survivor), the Ids of the live CRM Contacts synced as theirs."""
    wanted = set(people)
    known: dict[str, set[str]] = {}
    for row in conn.execute(
        "SELECT coalesce(p.merged_into, m.person_id)::text AS person_id, m.source_record_id AS crm_id"
        " FROM core.person_source_id m JOIN core.person p ON p.person_id = m.person_id"
        " WHERE m.source = %s AND m.deleted_at IS NULL",
        (CONTACT_SOURCE,),
    ):
        if row["person_id"] in wanted:
            known.setdefault(row["person_id"], set()).add(row["crm_id"])
    return known


def deleted_in_crm(conn: psycopg.Connection, people: Iterable[str]) -> set[str]:
    """People whose every CRM Contact was deleted or merged away in the CRM (revision 0022): pushing them would
    re-create what the CRM's staff removed, so they are left out (a merge's review pair decides the rest)."""
    wanted = set(people)
    return {
        row["person_id"]
        for row in conn.execute(
            "SELECT coalesce(p.merged_into, m.person_id)::text AS person_id"
            " FROM core.person_source_id m JOIN core.person p ON p.person_id = m.person_id"
            " WHERE m.source = %s GROUP BY 1 HAVING bool_and(m.deleted_at IS NOT NULL)",
            (CONTACT_SOURCE,),
        )
        if row["person_id"] in wanted
    }


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
            # Already pushed: a Contact gone from the CRM is a RECORD_GONE conflict for a person (plan_push).
            removed = deleted_in_crm(conn, desired) - set(state)
        for person in removed:
            del desired[person]
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
            deleted_in_crm=len(removed),
        )
        if report_dir is not None:
            path = report_path(report_dir, run_id)
            write_report(path, plan.changes, links)
            result.report_path = str(path)
        with conn.transaction():
            conn.execute("DELETE FROM ops.crm_push_change WHERE run_id = %s", (run_id,))
            conn.execute(_sql("record_run.sql"), result.as_dict())
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
                    crm_time(c.crm_last_modified),
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
                    for code in [error_code((a.get("errors") or [{}])[0])]
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


def _keep_errors(
    cursor: psycopg.Cursor, run_id: str, person: str, answer: Mapping[str, Any], record: Mapping[str, Any]
) -> None:
    """A record the CRM refused, one open row per error code (the values we sent blanked out)."""
    errors = answer.get("errors") or [{"statusCode": "UNKNOWN", "message": "no error given"}]
    for error in errors:
        cursor.execute(
            _sql("keep_error.sql"),
            (
                run_id,
                run_id,
                person,
                error_code(error),
                redact(str(error.get("message") or ""), record),
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
    size = writer.batch_size(
        len(people)
    )  # 200 per collection, or a Bulk API 2.0 job's worth for a large push
    for start in range(0, len(people), size):
        batch = people[start : start + size]
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
                    _sql("record_accepted.sql"),
                    {
                        "person": person,
                        "crm_id": crm_id,
                        "hashes": json.dumps({k: value_hash(v) for k, v in sent.items()}),
                        "modified": crm_time(record.get("LastModifiedDate")),
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
                {"batch": start // size, **counts},
            )
        result.sent += len(batch)
        result.accepted += len(accepted)
        result.rejected += len(rejected)
        result.verified += verified


def _finish(conn: psycopg.Connection, result: PushResult) -> None:
    result.reconciled = is_reconciled(result)
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


def alert_push(
    url: str, result: dict[str, Any], *, run_id: str, send: Callable[[str], None], actor: Actor
) -> bool:
    """One grouped data alert for a push run (``result`` as ``PushResult.as_dict`` gives it): not reconciled,
    conflicts waiting, records refused; True when a message was sent."""
    outcome = alert_once(
        url, scope="crm_push:", title="CRM push", run_id=run_id,
        findings=push_findings(url, str(result["run_id"]), actor), send=send, actor=actor,
    )  # fmt: skip
    return outcome.sent


def require_push_reconciled(result: dict[str, Any]) -> None:
    """Fails the run (``error:PushNotReconciled``) when what the CRM accepted does not add up to what was sent."""
    if result["reconciled"] is False:
        raise PushNotReconciled(
            f"CRM push not reconciled: sent {result['sent']}, accepted {result['accepted']}, rejected "
            f"{result['rejected']}, read back as sent {result['verified']}"
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
