"""Migration phase 3 against the sandbox's certificate service and Salesforce, and a real warehouse: each
trigger exactly once across re-runs, crashes between the vendor call and the ledger write, lost answers
and backfills; the ineligible minor never reaches the campaign."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from crm_world import eligible, refused
from support import snapshot

from cdp.crm import push
from cdp.crm.client import SalesforceWriter
from cdp.sources.base import TransientError
from cdp.triggers import completions
from cdp.triggers.certificates import CertificateClient
from cdp.warehouse import Actor
from cdp_sandbox.crm_writes import COMPLETION_CAMPAIGN_ID
from cdp_sandbox.faults import Fault
from cdp_sandbox.server import SandboxServer

ACTOR = Actor("pytest")


@pytest.fixture
def run(synced: str, crm_sandbox: SandboxServer):
    counter = iter(range(1, 1000))

    def trigger(completed_since: datetime | None = None) -> completions.TriggerResult:
        certificates = CertificateClient(
            crm_sandbox.settings("certificates", max_attempts=2, retry_base_delay=0.01)
        )
        crm = SalesforceWriter(crm_sandbox.settings("salesforce", max_attempts=2, retry_base_delay=0.01))
        try:
            return completions.run_triggers(
                synced, certificates, crm, campaign_id=COMPLETION_CAMPAIGN_ID, run_id=f"trig-{next(counter)}",
                actor=ACTOR, completed_since=completed_since,
            )  # fmt: skip
        finally:
            certificates.close()
            crm.close()

    return trigger


@pytest.fixture
def pushed(synced: str, crm_sandbox: SandboxServer, tmp_path: Path) -> set[str]:
    """Phase 2 applied: the people whose contact is in the CRM."""
    writer = SalesforceWriter(crm_sandbox.settings("salesforce"))
    push.push_contacts(synced, writer, run_id="push-1", actor=ACTOR, mode="apply", report_dir=tmp_path)
    writer.close()
    return set(crm_sandbox.apis.salesforce_writes.by_external_id("Contact", "CDP_Person_Id__c"))


def completed(url: str) -> dict[str, str]:
    """completion source record id -> person, read independently of the code under test."""
    with psycopg.connect(url) as conn:
        return dict(
            conn.execute(
                "SELECT cc.source || ':' || cc.source_record_id, coalesce(p.merged_into, p.person_id)::text"
                " FROM core.course_completion cc JOIN core.person p USING (person_id)"
            ).fetchall()
        )


def certificate_keys(sandbox: SandboxServer) -> Counter:
    return Counter(r["idempotency_key"] for r in sandbox.apis.certificate_service.requests.values())


def members(sandbox: SandboxServer) -> dict[str, str]:
    """CampaignMember contact -> person id, for the completion campaign."""
    writes = sandbox.apis.salesforce_writes
    person_of = {r["Id"]: r["CDP_Person_Id__c"] for r in writes.records["Contact"].values()}
    return {
        person_of[m["ContactId"]]: m["CDP_Trigger_Key__c"]
        for m in writes.records["CampaignMember"].values()
        if m["CampaignId"] == COMPLETION_CAMPAIGN_ID
    }


def expected_members(url: str, in_crm: set[str]) -> set[str]:
    return set(completed(url).values()) & eligible(url, ("fundraising",)) & in_crm


def test_each_completion_triggers_exactly_once_and_a_rerun_changes_nothing(
    run, synced: str, crm_sandbox: SandboxServer, pushed: set[str]
) -> None:
    done = completed(synced)
    want_members = expected_members(synced, pushed)
    assert len(done) > 100 and len(want_members) > 20

    result = run()

    assert result.sent[completions.CERTIFICATE] == len(done)
    assert result.sent[completions.CAMPAIGN] == len(want_members)
    keys = certificate_keys(crm_sandbox)
    assert len(keys) == len(done) and set(keys.values()) == {1}
    assert {completions.idempotency_key(f"certificate:{c}") for c in done} == set(keys)
    assert set(members(crm_sandbox)) == want_members
    with psycopg.connect(synced) as conn:
        statuses = dict(
            conn.execute("SELECT status, count(*) FROM ops.completion_trigger GROUP BY 1").fetchall()
        )
        event = conn.execute(
            "SELECT details->'sent' FROM audit.audit_events WHERE action = 'completion_triggers'"
        ).fetchall()
    assert statuses == {"sent": len(done) + len(want_members)}
    assert event == [({"certificate": len(done), "crm_campaign": len(want_members)},)]

    ledger_before = snapshot(synced, ["ops.completion_trigger"])
    crm_before, posts_before = (
        crm_sandbox.apis.salesforce_writes.snapshot(),
        crm_sandbox.apis.certificate_service.posts,
    )
    again = run()

    assert again.claimed == {"certificate": 0, "crm_campaign": 0}
    assert again.sent == {"certificate": 0, "crm_campaign": 0}
    assert crm_sandbox.apis.certificate_service.posts == posts_before
    assert crm_sandbox.apis.salesforce_writes.snapshot() == crm_before
    assert snapshot(synced, ["ops.completion_trigger"]) == ledger_before


def test_an_ineligible_minor_gets_the_certificate_but_is_never_added_to_the_campaign(
    run, synced: str, crm_sandbox: SandboxServer, pushed: set[str]
) -> None:
    done = completed(synced)
    minors = refused(synced, "fundraising", "minor_without") & set(done.values())
    # Some of them are in the CRM (eligible for course messages), so only the consent rule keeps them out.
    assert minors & pushed

    run()

    assert not (set(members(crm_sandbox)) & minors)
    their_completions = {c for c, person in done.items() if person in minors}
    assert {completions.idempotency_key(f"certificate:{c}") for c in their_completions} <= set(
        certificate_keys(crm_sandbox)
    )
    with psycopg.connect(synced) as conn:
        claimed = conn.execute(
            "SELECT count(*) FROM ops.completion_trigger WHERE kind = 'crm_campaign' AND person_id = ANY(%s::uuid[])",
            (sorted(minors),),
        ).fetchone()[0]
    assert claimed == 0

    # Breaking the rule's premise: once a parent's consent is verified, the same minor is added.
    minor = sorted(minors & pushed)[0]
    with psycopg.connect(synced) as conn:
        conn.execute(
            "INSERT INTO core.consent (person_id, purpose, status, source, source_record_id, stated_at)"
            " VALUES (%s, 'fundraising', 'parental_consent_verified', 'pytest', %s, now())",
            (minor, str(uuid.uuid4())),
        )
    later = run()
    assert later.sent[completions.CAMPAIGN] == 1
    assert minor in members(crm_sandbox)


def test_a_crash_between_the_vendor_call_and_the_ledger_write_does_not_trigger_twice(
    run, synced: str, crm_sandbox: SandboxServer, pushed: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    done = completed(synced)
    want_members = expected_members(synced, pushed)
    real_record_sent = completions._record_sent
    calls = Counter()

    def crash_after_the_vendor_answered(conn, key, vendor_id, outcome, run_id):
        kind = key.split(":")[0]
        calls[kind] += 1
        if calls[kind] == 1:
            raise SystemExit(f"simulated crash before recording {kind}")  # the worker died here
        real_record_sent(conn, key, vendor_id, outcome, run_id)

    monkeypatch.setattr(completions, "_record_sent", crash_after_the_vendor_answered)
    with pytest.raises(SystemExit):
        run()
    with psycopg.connect(synced) as conn:
        left = conn.execute(
            "SELECT kind, count(*) FROM ops.completion_trigger WHERE status = 'sending' AND attempts = 1 GROUP BY 1"
        ).fetchall()
    assert left == [("certificate", 1)]
    assert len(certificate_keys(crm_sandbox)) == 1  # the service issued it; we did not record that

    with pytest.raises(SystemExit):  # the next try crashes the same way on its first campaign member
        run()
    monkeypatch.setattr(completions, "_record_sent", real_record_sent)
    final = run()

    keys = certificate_keys(crm_sandbox)
    assert len(keys) == len(done) and set(keys.values()) == {1}  # one certificate per completion, no more
    assert crm_sandbox.apis.certificate_service.posts == len(done) + 1  # the crashed one was asked twice
    assert set(members(crm_sandbox)) == want_members
    assert len(crm_sandbox.apis.salesforce_writes.records["CampaignMember"]) == len(want_members)
    assert final.replayed[completions.CAMPAIGN] >= 1
    with psycopg.connect(synced) as conn:
        replays = conn.execute(
            "SELECT kind, attempts FROM ops.completion_trigger WHERE outcome = 'replayed' ORDER BY kind"
        ).fetchall()
        statuses = dict(
            conn.execute("SELECT status, count(*) FROM ops.completion_trigger GROUP BY 1").fetchall()
        )
    assert ("certificate", 2) in replays
    assert statuses == {"sent": len(done) + len(want_members)}


def test_an_answer_lost_on_the_way_back_is_sent_again_with_the_same_key(
    run, synced: str, crm_sandbox: SandboxServer, pushed: set[str]
) -> None:
    done = completed(synced)
    fault = crm_sandbox.faults.add(Fault("lose_response", "certificates", "requests"))

    with pytest.raises(TransientError):
        run()  # the service acted, both answers (first try and the client's retry) were lost
    assert len(certificate_keys(crm_sandbox)) == 1
    crm_sandbox.faults.remove(fault.id)
    run()

    keys = certificate_keys(crm_sandbox)
    assert len(keys) == len(done) and set(keys.values()) == {1}


def test_backfills_and_runs_over_overlapping_periods_trigger_each_completion_once(
    run, synced: str, crm_sandbox: SandboxServer, pushed: set[str]
) -> None:
    done = completed(synced)
    recent = run(completed_since=datetime(2024, 7, 1, tzinfo=UTC))
    everything = run()
    again = run(completed_since=datetime(2024, 1, 1, tzinfo=UTC))

    assert 0 < recent.claimed[completions.CERTIFICATE] < len(done)
    assert recent.claimed[completions.CERTIFICATE] + everything.claimed[completions.CERTIFICATE] == len(done)
    assert again.claimed == {"certificate": 0, "crm_campaign": 0}
    keys = certificate_keys(crm_sandbox)
    assert len(keys) == len(done) and set(keys.values()) == {1}


def test_outreach_waits_for_the_contact_to_be_in_the_crm(
    run, synced: str, crm_sandbox: SandboxServer, tmp_path: Path
) -> None:
    before_push = run()

    assert before_push.sent[completions.CAMPAIGN] == 0
    assert before_push.waiting_for_crm_contact > 0
    writer = SalesforceWriter(crm_sandbox.settings("salesforce"))
    push.push_contacts(synced, writer, run_id="push-1", actor=ACTOR, mode="apply", report_dir=tmp_path)
    writer.close()
    in_crm = set(crm_sandbox.apis.salesforce_writes.by_external_id("Contact", "CDP_Person_Id__c"))
    after_push = run()

    assert after_push.sent[completions.CAMPAIGN] == len(expected_members(synced, in_crm)) > 0
    assert after_push.claimed[completions.CERTIFICATE] == 0


def test_the_trigger_ledger_refuses_deletes(run, synced: str, pushed: set[str]) -> None:
    run()
    with psycopg.connect(synced) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM ops.completion_trigger WHERE kind = 'certificate'")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("TRUNCATE ops.completion_trigger")
