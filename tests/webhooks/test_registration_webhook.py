"""The registration form's webhook stream lands people and consent like the Moodle registration consent:
its statements are what mart.outreach_decision decides on (age rules included), a later submission's
refusal takes the person off the list, and a bad submission is quarantined with nothing in core."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from privacy_seed import years_ago
from webhook_requests import iso, registration_payload, signed

from cdp.sync.specs import BY_KEY, SPECS
from cdp.warehouse import Actor
from cdp.webhooks import specs_with_webhooks
from cdp.webhooks import stream as webhook_stream

ACTOR = Actor("test-registration-webhook")
SPEC = BY_KEY["registration.submissions"]


def _deliver(client, payload: dict) -> None:
    body, headers = signed("registration", payload)
    answer = client.post("/registration", content=body, headers=headers)
    assert answer.status_code == 200 and answer.json()["status"] == "accepted", answer.text


def _process(url: str, run: str = "run-1"):
    return webhook_stream.process_pending(url, SPEC, actor=ACTOR, run_id=run)


def _decisions(url: str, email: str) -> dict[str, tuple]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT d.purpose, d.latest_status, d.refusal_reason, d.consent_source FROM mart.outreach_decision d"
            " JOIN core.person p USING (person_id) WHERE p.email_normalized = lower(%s)",
            (email,),
        ).fetchall()
    return {purpose: (status, reason, source) for purpose, status, reason, source in rows}


def test_the_registration_stream_has_a_spec_the_webhook_dag_runs_and_the_poll_does_not() -> None:
    assert SPEC in specs_with_webhooks()
    assert SPEC not in SPECS  # no polling API: cdp_sync must not try to read it


def test_registration_consent_is_what_outreach_decides_on(client, warehouse_url: str) -> None:
    adult, child, unknown = "adult.reg@example.org", "child.reg@example.org", "unknown.age@example.org"
    _deliver(client, registration_payload(email=adult, born=str(years_ago(30))))
    _deliver(client, registration_payload(email=child, born=str(years_ago(11)), parental="pending"))
    _deliver(client, registration_payload(email=unknown, born=None))

    result = _process(warehouse_url)
    assert (result.rows_read, result.rows_upserted, result.rows_quarantined) == (3, 3, 0)

    assert _decisions(warehouse_url, adult)["fundraising"] == ("given", None, "registration")
    child_decisions = _decisions(warehouse_url, child)
    assert child_decisions["fundraising"][1] == "minor_without_verified_parental_consent"
    assert child_decisions["course_messages"][:2] == (
        "parental_consent_pending", "latest_statement_parental_consent_pending"
    )  # fmt: skip
    assert _decisions(warehouse_url, unknown)["fundraising"][1] == "age_unknown"
    with psycopg.connect(warehouse_url) as conn:
        evidence = conn.execute(
            "SELECT c.receipt_id, c.parental_method, c.given_by, c.evidence ->> 'field', c.jurisdiction"
            " FROM core.consent c JOIN core.person p USING (person_id)"
            " WHERE p.email_normalized = %s AND c.purpose = 'course_messages'",
            (child,),
        ).fetchone()
        assert evidence[0].startswith("rcpt-") and evidence[1:] == (
            "signed consent form", "Pat Guardian", "consent.parental", "US"
        )  # fmt: skip
        # Consent changes are audited: one 'consent' event for the run, with the counts.
        event = conn.execute(
            "SELECT details FROM audit.audit_events WHERE action = 'consent'"
            " AND entity_type = 'registration.submissions_webhook'"
        ).fetchone()[0]
    assert event["rows_added"] == 4 and event["by_status"]["given"] == 3


def test_verified_parental_consent_then_a_refusal_take_effect_by_the_next_run(
    client, warehouse_url: str
) -> None:
    email = "family.reg@example.org"
    earlier = iso(datetime.now(UTC) - timedelta(days=2))
    _deliver(
        client,
        registration_payload(email=email, born=str(years_ago(12)), parental="verified", submitted_at=earlier),
    )
    _process(warehouse_url, "run-1")
    assert _decisions(warehouse_url, email)["course_messages"][:2] == ("parental_consent_verified", None)

    # The parent re-submits the form and refuses everything: the person is off every list by the next run.
    _deliver(
        client, registration_payload(email=email, born=str(years_ago(12)), parental="none", marketing=False)
    )
    _process(warehouse_url, "run-2")
    decisions = _decisions(warehouse_url, email)
    # A "no" after a "yes" to the same question is a withdrawal, as with the Moodle registration fields.
    assert decisions["fundraising"][:2] == ("withdrawn", "latest_statement_withdrawn")
    assert decisions["course_messages"][:2] == ("withdrawn", "latest_statement_withdrawn")
    with psycopg.connect(warehouse_url) as conn:
        people = conn.execute(
            "SELECT count(*) FROM core.person WHERE email_normalized = %s", (email,)
        ).fetchone()
        assert people[0] == 1  # the second submission resolved to the same person (email + given name)
        listed = conn.execute(
            "SELECT count(*) FROM mart.outreach_eligible e JOIN core.person p USING (person_id)"
            " WHERE p.email_normalized = %s",
            (email,),
        ).fetchone()[0]
    assert listed == 0


def test_a_bad_submission_is_quarantined_and_reaches_no_core_table(client, warehouse_url: str) -> None:
    payload = registration_payload(email="not-an-email", born="2031-02-30", parental="maybe")
    _deliver(client, payload)
    result = _process(warehouse_url)
    assert (result.rows_read, result.rows_upserted, result.rows_quarantined) == (1, 0, 1)
    with psycopg.connect(warehouse_url) as conn:
        reason = conn.execute(
            "SELECT reason FROM ops.quarantine WHERE source = 'registration' AND source_record_id = %s",
            (payload["data"]["id"],),
        ).fetchone()[0]
        assert "email" in reason
        assert conn.execute("SELECT count(*) FROM core.person").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM core.consent").fetchone()[0] == 0
