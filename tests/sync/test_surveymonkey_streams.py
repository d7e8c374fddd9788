"""SurveyMonkey into the warehouse from the sandbox: counts equal the generator's truth, contacts become the
right people with the consent kept on them (apart from the responses), responses land readable and linked
to their contact's person and consent, consent reaches mart.outreach_decision, rejects are kept with their
reason, responses that arrive before their contact are linked later, and re-runs change nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
from support import snapshot

from cdp.sources import registry
from cdp_sandbox import surveymonkey as fake
from cdp_sandbox.generator import World

SyncFn = Callable[..., Any]
STREAMS = ("surveymonkey.contacts", "surveymonkey.responses")
SNAPSHOT_TABLES = ("core.survey_response", "core.consent", "core.person", "core.person_source_id",
                   "ops.quarantine", "raw.records")  # fmt: skip


def _sync_all(sync: SyncFn, end: datetime, run: str = "run-1") -> dict[str, Any]:
    results = {"moodle.users": sync("moodle.users", end, run=run)}
    for key in STREAMS:
        results[key] = sync(key, end, run=run)
    return results


def _contact_of_response(world: World) -> dict[str, str | None]:
    """Response id -> the id of the contact whose invitation it answered (None: the web link)."""
    table = world.table("surveymonkey", "responses")
    return {
        table.id_of(i): (str(fake.CONTACT_BASE + int(table.columns["respondent"][i]))
                         if table.columns["respondent"][i] >= 0 else None)
        for i in table.visible_rows().tolist()
    }  # fmt: skip


def _expected_status(contact: dict, optout: bool) -> str | None:
    if optout:
        return "refused"
    return {"Yes": "given", "No": "refused", "": None}[contact["custom_fields"][fake.CONSENT_FIELD]]


def test_counts_equal_the_truth_and_rejects_are_kept_with_their_reason(
    warehouse_url: str, survey_world: World, sync: SyncFn, quarantined
) -> None:
    world = survey_world
    results = _sync_all(sync, datetime.now(UTC))
    for key in STREAMS:
        assert results[key].rows_read == world.truth.expected_count(*key.split(".")), key
    for stream in ("contacts", "responses"):
        malformed = {str(k): reason for k, reason in world.truth.malformed("surveymonkey", stream).items()}
        assert malformed, f"the world must plant malformed SurveyMonkey {stream}"
        kept = quarantined("surveymonkey", stream)
        assert set(kept) == set(malformed), stream
        for record_id, reason in malformed.items():
            word = {"malformed_email": "email", "unknown_enum": "unknown"}[reason]
            assert word in kept[record_id], (reason, kept[record_id])
    contacts = {c["id"]: c for c in world.records("surveymonkey", "contacts")}
    odd = next(r for r, why in quarantined("surveymonkey", "contacts").items() if "consent" in why)
    refused = repr(contacts[odd]["custom_fields"][fake.CONSENT_FIELD])
    assert refused not in quarantined("surveymonkey", "contacts")[odd]  # the value is kept beside the reason
    with psycopg.connect(warehouse_url) as conn:
        [(value,)] = conn.execute(
            "SELECT reason_value FROM ops.quarantine WHERE source = 'surveymonkey' AND stream = 'contacts'"
            " AND source_record_id = %s AND resolved_at IS NULL",
            (odd,),
        ).fetchall()
    assert value == refused


def test_the_source_count_of_a_window_equals_the_truth(survey_world: World, survey_sandbox) -> None:
    responses = registry.stream("surveymonkey", "responses", survey_sandbox.settings("surveymonkey"))
    since, until = datetime(2023, 6, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)
    expected = survey_world.truth.expected_count("surveymonkey", "responses", since, until)
    assert responses.count(since, until) == expected > 0
    assert sum(len(page) for page in responses.read(since, until)) == expected


def test_contacts_are_the_right_people_with_the_consent_kept_on_the_contact(
    warehouse_url: str, survey_world: World, sync: SyncFn, quarantined
) -> None:
    world = survey_world
    _sync_all(sync, datetime.now(UTC))
    table = world.table("surveymonkey", "contacts")
    bad = set(quarantined("surveymonkey", "contacts"))
    with psycopg.connect(warehouse_url) as conn:
        mapped = dict(conn.execute(
            "SELECT source_record_id, person_id::text FROM core.person_source_id WHERE source = 'surveymonkey.contact'"
        ).fetchall())  # fmt: skip
        moodle_person = dict(conn.execute(
            "SELECT source_record_id, person_id::text FROM core.person_source_id WHERE source = 'moodle.user'"
        ).fetchall())  # fmt: skip
        statements = {
            key.split(":", 1)[1]: (status, person, evidence)
            for key, status, person, evidence in conn.execute(
                "SELECT DISTINCT ON (statement_key) statement_key, status, person_id::text, evidence"
                " FROM core.consent WHERE source = 'surveymonkey' AND purpose = 'surveys'"
                " ORDER BY statement_key, stated_at DESC, recorded_at DESC"
            ).fetchall()
        }
    assert set(mapped) == {c["id"] for c in world.records("surveymonkey", "contacts")} - bad
    # The contact joins the person the LMS already holds under the same email and first name.
    moodle_of_truth = {world.truth.person_of("moodle", "users", int(u)): p for u, p in moodle_person.items()}
    joined = [cid for cid, person in mapped.items()
              if moodle_of_truth.get(world.truth.person_of("surveymonkey", "contacts", cid)) == person]  # fmt: skip
    assert len(joined) > 0.8 * len(mapped)
    seen = {"given": 0, "refused": 0, None: 0}
    for record in world.records("surveymonkey", "contacts"):
        if record["id"] in bad:
            continue
        optout = bool(table.columns["optout"][table.index_of(record["id"])])
        expected = _expected_status(record, optout)
        seen[expected] += 1
        if expected is None:
            assert record["id"] not in statements
            continue
        status, person, evidence = statements[record["id"]]
        assert (status, person) == (expected, mapped[record["id"]])
        assert evidence["custom_field"] == {"id": fake.CONSENT_FIELD, "label": "Survey consent"}
        assert evidence["list_status"] == ("optout" if optout else "active")
    assert all(seen.values()), seen


def test_responses_land_readable_and_linked_to_their_contacts_person_and_consent(
    warehouse_url: str, survey_world: World, sync: SyncFn, quarantined
) -> None:
    world = survey_world
    _sync_all(sync, datetime.now(UTC))
    contact_of = _contact_of_response(world)
    bad_responses = set(quarantined("surveymonkey", "responses"))
    with psycopg.connect(warehouse_url) as conn:
        mapped = dict(conn.execute(
            "SELECT source_record_id, person_id::text FROM core.person_source_id WHERE source = 'surveymonkey.contact'"
        ).fetchall())  # fmt: skip
        rows = conn.execute(
            "SELECT r.source_record_id, r.person_id::text, r.answers, r.survey_id, c.statement_key, c.person_id::text"
            " FROM core.survey_response r LEFT JOIN core.consent c USING (consent_id)"
            " WHERE r.source = 'surveymonkey'"
        ).fetchall()
    assert {r[0] for r in rows} == set(contact_of) - bad_responses
    responses = {r["id"]: r for r in world.records("surveymonkey", "responses")}
    details = fake.survey_details()["pages"][0]["questions"]
    choice_text = {c["id"]: c["text"] for c in details[0]["answers"]["choices"]}
    linked = 0
    for record_id, person, answers, survey_id, statement, consent_person in rows:
        assert survey_id == fake.SURVEY_ID
        # Readable: the question's heading and the choice's text, never ids.
        chosen = responses[record_id]["pages"][0]["questions"][0]["answers"][0]["choice_id"]
        assert answers[details[0]["headings"][0]["heading"]] == [choice_text[chosen]]
        contact = contact_of[record_id]
        if contact is None or contact not in mapped:  # web link, or a contact held in quarantine
            assert person is None and statement is None, record_id
            continue
        linked += 1
        assert person == mapped[contact]
        assert world.truth.person_of("surveymonkey", "responses", record_id) == world.truth.person_of(
            "surveymonkey", "contacts", contact
        )
        if statement is not None:
            assert consent_person == person and statement.startswith("surveymonkey.contact:")
    assert linked > 0.7 * len(rows)


def test_a_consented_contacts_response_reaches_the_outreach_decision_and_an_unconsented_one_does_not(
    warehouse_url: str, survey_world: World, sync: SyncFn
) -> None:
    _sync_all(sync, datetime.now(UTC))
    with psycopg.connect(warehouse_url) as conn:
        decided = conn.execute(
            "SELECT c.status, d.refusal_reason, d.consent_source, d.age, d.age_of_consent"
            " FROM core.survey_response r"
            " JOIN core.consent c USING (consent_id)"
            " JOIN mart.outreach_decision d ON d.person_id = r.person_id AND d.purpose = 'surveys'"
            " WHERE r.source = 'surveymonkey'"
        ).fetchall()
    eligible = [row for row in decided if row[1] is None]
    refused = [row for row in decided if row[0] == "refused"]
    assert eligible and refused
    for status, reason, source, age, age_of_consent in decided:
        assert source == "surveymonkey"
        if status == "given" and age is not None and age >= age_of_consent:
            assert reason is None
        if status == "refused":
            assert reason == "latest_statement_refused"
    assert all(status == "given" for status, *_ in eligible)


def test_responses_synced_before_their_contacts_are_linked_when_the_contacts_arrive(
    warehouse_url: str, sync: SyncFn
) -> None:
    end = datetime.now(UTC)
    sync("moodle.users", end)
    sync("surveymonkey.responses", end)
    count = (
        "SELECT count(*) FROM core.survey_response WHERE source = 'surveymonkey' AND person_id IS NOT NULL"
    )
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute(count).fetchone()[0] == 0
    sync("surveymonkey.contacts", end)
    with psycopg.connect(warehouse_url) as conn:
        linked = conn.execute(count).fetchone()[0]
        unlinked_known = conn.execute(
            "SELECT count(*) FROM core.survey_response r JOIN core.person_source_id m"
            " ON m.source = 'surveymonkey.contact_email' AND m.source_record_id = r.respondent_ref"
            " WHERE r.person_id IS DISTINCT FROM m.person_id"
            "    OR (r.consent_id IS NULL AND EXISTS (SELECT 1 FROM core.consent c WHERE c.person_id = m.person_id"
            "        AND c.statement_key LIKE 'surveymonkey.contact:%'))"
        ).fetchone()[0]
    assert linked > 0 and unlinked_known == 0


def test_a_contact_who_opts_out_after_consenting_lands_as_a_withdrawal(
    warehouse_url: str, survey_world: World, sync: SyncFn
) -> None:
    end = datetime.now(UTC)
    sync("moodle.users", end)
    sync("surveymonkey.contacts", end)
    table = survey_world.table("surveymonkey", "contacts")
    index = next(i for i in range(len(table)) if table.columns["consent"][i] == 1 and not table.columns["optout"][i]
                 and table.malformed[i] == 0)  # fmt: skip
    table.columns["optout"][index] = True  # they used the invitation's opt-out link
    sync("surveymonkey.contacts", end, run="run-2")
    with psycopg.connect(warehouse_url) as conn:
        history = conn.execute(
            "SELECT status FROM core.consent WHERE statement_key = %s ORDER BY stated_at",
            (f"surveymonkey.contact:{table.id_of(index)}",),
        ).fetchall()
    assert [status for (status,) in history] == ["given", "withdrawn"]


def test_rerunning_the_same_interval_changes_nothing(warehouse_url: str, sync: SyncFn) -> None:
    end = datetime.now(UTC)
    _sync_all(sync, end)
    before = snapshot(warehouse_url, SNAPSHOT_TABLES)
    audit = "SELECT count(*) FROM audit.audit_events WHERE action <> 'import'"
    with psycopg.connect(warehouse_url) as conn:
        changes_before = conn.execute(audit).fetchone()[0]

    _sync_all(sync, end, run="run-2")

    assert snapshot(warehouse_url, SNAPSHOT_TABLES) == before
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute(audit).fetchone()[0] == changes_before, "a re-run wrote row or consent changes"
