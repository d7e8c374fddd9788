"""Migration phase 3: course completions trigger a certificate request and a donor-outreach action, each
exactly once, even across re-runs, retries after a crash, and backfills.

What is triggered, for whom.
- *Certificate request* (the certificate service): for every completion of a person who is not erased.
  Consent is not asked for: the certificate is the service the learner enrolled for (contract / legitimate
  interest, not marketing), so a minor or someone who refused outreach still gets theirs. It carries the
  person id, the name to print, the course and the completion date, and no contact details.
- *Donor outreach* (a ``CampaignMember`` of the CRM campaign configured as ``completion_campaign_id``):
  only for people that ``mart.outreach_eligible`` holds for ``fundraising``, read as the ``cdp_outreach``
  role, so an ineligible minor is never added. Once per person and campaign (Salesforce allows one member
  per contact and campaign), and only once the person's contact is in the CRM (phase 2 pushed it); until
  then the person is counted as waiting and picked up by a later run.

Exactly once. ``ops.completion_trigger`` has one row per trigger key (``certificate:<completion source>:
<record id>`` or ``crm_campaign:<campaign>:<person>``), claimed and committed before the vendor is called.
The vendor gets an idempotency key derived from it: the ``Idempotency-Key`` header for the certificate
service, the external id ``CDP_Trigger_Key__c`` of the CampaignMember upsert for the CRM. A claim left
``sending`` (the run crashed between the vendor's answer and our write) is sent again with the same key,
which the vendor answers with what it did the first time. Re-runs and backfills find the keys taken. The
ledger refuses DELETE. A claim whose person has since lost eligibility (or was erased) is ``withheld``.
A vendor refusal (``rejected``, reason kept) is tried again by every later run.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from cdp import audit
from cdp.crm.client import SalesforceWriter
from cdp.paths import SQL_DIR
from cdp.triggers.certificates import CertificateClient, CertificateRefused
from cdp.warehouse import Actor, connect

log = logging.getLogger(__name__)

COMPLETIONS_SQL = SQL_DIR / "triggers" / "completions.sql"
CERTIFICATE, CAMPAIGN = "certificate", "crm_campaign"
OUTREACH_PURPOSE = "fundraising"
MEMBER_EXTERNAL_ID = "CDP_Trigger_Key__c"
CONTACT_EXTERNAL_ID = "CDP_Person_Id__c"
MEMBER_STATUS = "Sent"
_KEY_NAMESPACE = uuid.UUID("6f1c2b5e-2f4a-4c1e-9a7d-3b8e0c5d9f10")


def idempotency_key(trigger_key: str) -> str:
    """Stable for a trigger key, opaque to the vendor."""
    return str(uuid.uuid5(_KEY_NAMESPACE, trigger_key))


@dataclass
class TriggerResult:
    run_id: str
    completions: int = 0
    claimed: dict[str, int] = field(default_factory=lambda: {CERTIFICATE: 0, CAMPAIGN: 0})
    sent: dict[str, int] = field(default_factory=lambda: {CERTIFICATE: 0, CAMPAIGN: 0})
    replayed: dict[str, int] = field(default_factory=lambda: {CERTIFICATE: 0, CAMPAIGN: 0})
    rejected: dict[str, int] = field(default_factory=lambda: {CERTIFICATE: 0, CAMPAIGN: 0})
    withheld: dict[str, int] = field(default_factory=lambda: {CERTIFICATE: 0, CAMPAIGN: 0})
    not_eligible: int = 0
    waiting_for_crm_contact: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def outreach_eligible_people(conn: psycopg.Connection) -> set[str]:
    """Who may be approached for fundraising: mart.outreach_eligible, read as the outreach role."""
    with conn.transaction():
        conn.execute("SET LOCAL ROLE cdp_outreach")
        rows = conn.execute(
            "SELECT DISTINCT person_id::text AS person_id FROM mart.outreach_eligible WHERE purpose = %s",
            (OUTREACH_PURPOSE,),
        ).fetchall()
    return {row["person_id"] for row in rows}


def _claim(conn: psycopg.Connection, claims: list[dict[str, Any]], run_id: str) -> int:
    if not claims:
        return 0
    with conn.transaction(), conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO ops.completion_trigger (trigger_key, kind, idempotency_key, completion_id, person_id,"
            " status, claimed_run_id) VALUES (%(key)s, %(kind)s, %(idempotency_key)s, %(completion_id)s,"
            " %(person_id)s, 'sending', %(run)s) ON CONFLICT (trigger_key) DO NOTHING RETURNING 1",
            [{**claim, "run": run_id} for claim in claims],
            returning=True,
        )
        claimed = 0
        while True:
            claimed += len(cursor.fetchall())
            if not cursor.nextset():
                break
    return claimed


def _pending(conn: psycopg.Connection, kind: str) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT trigger_key, idempotency_key, completion_id::text AS completion_id, person_id::text AS person_id"
        " FROM ops.completion_trigger WHERE kind = %s AND status IN ('sending', 'rejected')"
        " ORDER BY claimed_at, trigger_key",
        (kind,),
    ).fetchall()


def _attempt(conn: psycopg.Connection, keys: list[str]) -> None:
    """Counted (and committed) before the call, so a crash mid-call still shows the attempt."""
    conn.execute(
        "UPDATE ops.completion_trigger SET attempts = attempts + 1 WHERE trigger_key = ANY(%s)", (keys,)
    )


def _record_sent(
    conn: psycopg.Connection, key: str, vendor_id: str | None, outcome: str, run_id: str
) -> None:
    conn.execute(
        "UPDATE ops.completion_trigger SET status = 'sent', vendor_id = %s, outcome = %s, last_error = NULL,"
        " sent_run_id = %s, sent_at = now() WHERE trigger_key = %s",
        (vendor_id, outcome, run_id, key),
    )


def _record_other(conn: psycopg.Connection, key: str, status: str, reason: str) -> None:
    conn.execute(
        "UPDATE ops.completion_trigger SET status = %s, last_error = %s WHERE trigger_key = %s",
        (status, reason, key),
    )


def run_triggers(
    url: str,
    certificates: CertificateClient,
    crm: SalesforceWriter,
    *,
    campaign_id: str,
    run_id: str,
    actor: Actor,
    completed_since: datetime | None = None,
) -> TriggerResult:
    """Claim every trigger that is due, then send every claim not yet sent; see the module docstring."""
    result = TriggerResult(run_id)
    with connect(url, actor, autocommit=True) as conn:
        # One trigger run at a time, whatever starts it (a retry, a manual run, a backfill).
        conn.execute("SELECT pg_advisory_lock(hashtext('cdp.completion_triggers'))")
        try:
            due = _claim_due(conn, result, campaign_id, completed_since)
            completions = (
                _completions_by_id(conn) if completed_since else {c["completion_id"]: c for c in due}
            )
            eligible = outreach_eligible_people(conn)
            _send_certificates(conn, certificates, completions, result)
            _send_campaign_members(conn, crm, campaign_id, eligible, result)
            with conn.transaction():
                audit.record_event(
                    conn, "completion_triggers", "completion_trigger_run", run_id, result.as_dict()
                )
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext('cdp.completion_triggers'))")
    log.info("completion triggers %s: %s", run_id, result.as_dict())
    return result


def _claim_due(
    conn: psycopg.Connection, result: TriggerResult, campaign_id: str, completed_since: datetime | None
) -> list[dict[str, Any]]:
    completions = conn.execute(COMPLETIONS_SQL.read_text(), {"completed_since": completed_since}).fetchall()
    result.completions = len(completions)
    eligible = outreach_eligible_people(conn)
    in_crm = {
        row["person_id"]
        for row in conn.execute(
            "SELECT person_id::text AS person_id FROM ops.crm_push_state WHERE crm_id IS NOT NULL"
        )
    }
    certificates, members, waiting, not_eligible = [], {}, set(), set()
    for completion in completions:
        key = f"{CERTIFICATE}:{completion['source']}:{completion['source_record_id']}"
        certificates.append(
            {
                "key": key,
                "kind": CERTIFICATE,
                "idempotency_key": idempotency_key(key),
                "completion_id": completion["completion_id"],
                "person_id": completion["person_id"],
            }
        )
        person = completion["person_id"]
        if person not in eligible:
            not_eligible.add(person)
        elif person not in in_crm:
            waiting.add(person)
        elif person not in members:  # the person's first completion is the one that triggers
            key = f"{CAMPAIGN}:{campaign_id}:{person}"
            members[person] = {
                "key": key,
                "kind": CAMPAIGN,
                "idempotency_key": idempotency_key(key),
                "completion_id": completion["completion_id"],
                "person_id": person,
            }
    result.not_eligible, result.waiting_for_crm_contact = len(not_eligible), len(waiting)
    result.claimed[CERTIFICATE] = _claim(conn, certificates, result.run_id)
    result.claimed[CAMPAIGN] = _claim(conn, list(members.values()), result.run_id)
    return completions


def _completions_by_id(conn: psycopg.Connection) -> dict[str, dict[str, Any]]:
    return {
        row["completion_id"]: row
        for row in conn.execute(COMPLETIONS_SQL.read_text(), {"completed_since": None}).fetchall()
    }


def _certificate_body(completion: dict[str, Any]) -> dict[str, Any]:
    name = " ".join(part for part in (completion["given_name"], completion["family_name"]) if part)
    return {
        "recipient": {"reference": completion["person_id"], "name": name},
        "course": {"reference": completion["course_reference"], "title": completion["course_title"]},
        "completed_on": completion["completed_at"].date().isoformat(),
        "metadata": {"completion_id": completion["completion_id"]},
    }


def _send_certificates(
    conn: psycopg.Connection,
    client: CertificateClient,
    completions: dict[str, dict[str, Any]],
    result: TriggerResult,
) -> None:
    for claim in _pending(conn, CERTIFICATE):
        completion = completions.get(claim["completion_id"])
        if completion is None:  # erased since the claim
            _record_other(conn, claim["trigger_key"], "withheld", "person erased or completion gone")
            result.withheld[CERTIFICATE] += 1
            continue
        _attempt(conn, [claim["trigger_key"]])
        try:
            issued = client.request_certificate(claim["idempotency_key"], _certificate_body(completion))
        except CertificateRefused as refusal:
            _record_other(conn, claim["trigger_key"], "rejected", refusal.code)
            result.rejected[CERTIFICATE] += 1
            continue
        _record_sent(conn, claim["trigger_key"], issued.request_id, "replayed" if issued.replayed else "created",
                     result.run_id)  # fmt: skip
        result.sent[CERTIFICATE] += 1
        result.replayed[CERTIFICATE] += issued.replayed


def _send_campaign_members(
    conn: psycopg.Connection,
    crm: SalesforceWriter,
    campaign_id: str,
    eligible: set[str],
    result: TriggerResult,
) -> None:
    pending = _pending(conn, CAMPAIGN)
    for claim in [c for c in pending if c["person_id"] not in eligible]:
        _record_other(conn, claim["trigger_key"], "withheld", "no longer in mart.outreach_eligible")
        result.withheld[CAMPAIGN] += 1
    pending = [c for c in pending if c["person_id"] in eligible]
    if not pending:
        return
    _attempt(conn, [c["trigger_key"] for c in pending])
    answers = crm.upsert(
        "CampaignMember",
        MEMBER_EXTERNAL_ID,
        [
            {
                MEMBER_EXTERNAL_ID: claim["idempotency_key"],
                "CampaignId": campaign_id,
                "Contact": {CONTACT_EXTERNAL_ID: claim["person_id"]},
                "Status": MEMBER_STATUS,
            }
            for claim in pending
        ],
    )
    for claim, answer in zip(pending, answers, strict=True):
        codes = [str(e.get("statusCode")) for e in answer.get("errors") or []]
        if answer.get("success"):
            outcome = "created" if answer.get("created") else "replayed"
            _record_sent(conn, claim["trigger_key"], answer.get("id"), outcome, result.run_id)
            result.sent[CAMPAIGN] += 1
            result.replayed[CAMPAIGN] += outcome == "replayed"
        elif codes == ["DUPLICATE_VALUE"]:  # already a member (added under another key, e.g. before a merge)
            _record_sent(conn, claim["trigger_key"], None, "already_member", result.run_id)
            result.sent[CAMPAIGN] += 1
        else:
            _record_other(conn, claim["trigger_key"], "rejected", ",".join(codes) or "unknown")
            result.rejected[CAMPAIGN] += 1
