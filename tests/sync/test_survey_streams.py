"""Typeform and Zigpoll into the warehouse: counts equal the truth, every response is linked to the
right person and to its consent statement, a missing age stays unknown, rejects are kept with their
reason, responses that arrive before their participant are linked later, and re-runs change nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from support import snapshot

from cdp.sources import validation as v
from cdp_sandbox.generator import World

SyncFn = Callable[..., Any]
SURVEY_STREAMS = ("typeform.responses", "zigpoll.participants", "zigpoll.responses")
SNAPSHOT_TABLES = ("core.survey_response", "core.consent", "core.person", "core.person_source_id",
                   "ops.quarantine", "raw.records")  # fmt: skip


def _answer(response: dict, ref: str) -> dict | None:
    return next((a for a in response["answers"] if a["field"]["ref"] == ref), None)


def _sync_surveys(sync: SyncFn, end: datetime, run: str = "run-1") -> dict[str, object]:
    results = {"moodle.users": sync("moodle.users", end, run=run)}
    for key in SURVEY_STREAMS:
        results[key] = sync(key, end, run=run)
    return results


def _bad_users(world: World) -> set[str]:
    return {str(i) for i in world.truth.malformed("moodle", "users")}


def test_typeform_responses_land_linked_to_the_right_person_and_rejects_are_kept(
    warehouse_url: str, survey_world: World, sync: SyncFn, quarantined, truth_people
) -> None:
    world = survey_world
    results = _sync_surveys(sync, datetime.now(UTC))

    responses = list(world.records("typeform", "responses"))
    assert results["typeform.responses"].rows_read == world.truth.expected_count("typeform", "responses")
    malformed = {str(k): reason for k, reason in world.truth.malformed("typeform", "responses").items()}
    assert malformed, "the world must plant malformed Typeform responses for this test to mean anything"
    orphans = {
        r["response_id"]
        for r in responses
        if r["response_id"] not in malformed and r["hidden"]["learner_id"] in _bad_users(world)
    }
    kept = quarantined("typeform", "responses")
    assert set(kept) == set(malformed) | orphans
    for record_id, reason in malformed.items():
        assert reason.split("_")[0] in kept[record_id], (reason, kept[record_id])
    orphan_reason = "unknown learner: the moodle user in hidden.learner_id is not in the warehouse"
    assert all(kept[r] == orphan_reason for r in orphans)

    truth = truth_people()
    with psycopg.connect(warehouse_url) as conn:
        landed = dict(
            conn.execute(
                "SELECT source_record_id, person_id::text FROM core.survey_response WHERE source = 'typeform'"
            ).fetchall()
        )
    assert len(landed) == len(responses) - len(kept)
    for record_id, person in landed.items():
        assert truth[person] == {world.truth.person_of("typeform", "responses", record_id)}, record_id


def test_zigpoll_responses_link_to_their_participant_and_its_separate_consent(
    warehouse_url: str, survey_world: World, sync: SyncFn, quarantined, truth_people
) -> None:
    world = survey_world
    results = _sync_surveys(sync, datetime.now(UTC))
    for key in ("zigpoll.participants", "zigpoll.responses"):
        assert results[key].rows_read == world.truth.expected_count(*key.split("."))

    participants = {p["_id"]: p for p in world.records("zigpoll", "participants")}
    bad_participants = {str(k): r for k, r in world.truth.malformed("zigpoll", "participants").items()}
    orphan_participants = {
        pid
        for pid, p in participants.items()
        if pid not in bad_participants and p["metadata"]["moodle_user_id"] in _bad_users(world)
    }
    assert set(quarantined("zigpoll", "participants")) == set(bad_participants) | orphan_participants
    bad_responses = {str(k) for k in world.truth.malformed("zigpoll", "responses")}
    assert bad_responses
    assert set(quarantined("zigpoll", "responses")) == bad_responses

    truth = truth_people()
    known_participants = set(participants) - set(bad_participants) - orphan_participants
    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute(
            "SELECT r.source_record_id, r.respondent_ref, r.person_id::text, c.statement_key, c.status,"
            "       c.person_id::text, c.evidence"
            " FROM core.survey_response r LEFT JOIN core.consent c USING (consent_id) WHERE r.source = 'zigpoll'"
        ).fetchall()
    assert len(rows) == world.truth.expected_count("zigpoll", "responses") - len(bad_responses)
    linked = 0
    for record_id, participant, person, statement, status, consent_person, evidence in rows:
        if participant not in known_participants:
            assert person is None and statement is None, "a response of an unknown participant has no person"
            continue
        linked += 1
        assert truth[person] == {world.truth.person_of("zigpoll", "responses", record_id)}
        # The consent metadata Zigpoll keeps apart from the response is linked to it.
        assert statement == f"zigpoll.participant:{participant}"
        assert consent_person == person
        expected = {"granted": "given", "declined": "refused"}[participants[participant]["consent"]["status"]]
        assert status == expected
        assert evidence["policyVersion"] == participants[participant]["consent"]["policyVersion"]
    assert linked > 0.8 * len(rows)


def test_typeform_consent_answer_is_the_consent_linked_to_its_response(
    warehouse_url: str, survey_world: World, sync: SyncFn
) -> None:
    _sync_surveys(sync, datetime.now(UTC))
    responses = {r["response_id"]: r for r in survey_world.records("typeform", "responses")}
    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute(
            "SELECT r.source_record_id, r.person_id, c.person_id, c.purpose, c.status, c.receipt_id, c.stated_at,"
            "       r.submitted_at"
            " FROM core.survey_response r JOIN core.consent c USING (consent_id) WHERE r.source = 'typeform'"
        ).fetchall()
        landed = conn.execute(
            "SELECT count(*) FROM core.survey_response WHERE source = 'typeform'"
        ).fetchone()[0]
    assert len(rows) == landed > 0
    for record_id, person, consent_person, purpose, status, receipt, stated_at, submitted_at in rows:
        answer = _answer(responses[record_id], "may_contact")
        assert status == ("given" if answer["boolean"] else "refused")
        assert (consent_person, purpose, receipt, stated_at) == (person, "surveys", record_id, submitted_at)


def test_a_response_without_the_age_field_keeps_age_unknown(
    warehouse_url: str, survey_world: World, sync: SyncFn
) -> None:
    _sync_surveys(sync, datetime.now(UTC))
    expected: dict[tuple[str, str], int | None] = {}
    for response in survey_world.records("typeform", "responses"):
        answer = _answer(response, "age")
        expected["typeform", response["response_id"]] = answer["number"] if answer else None
    for response in survey_world.records("zigpoll", "responses"):
        expected["zigpoll", response["_id"]] = response["metadata"].get("age")
    with psycopg.connect(warehouse_url) as conn:
        landed = conn.execute(
            "SELECT source, source_record_id, age_reported FROM core.survey_response"
        ).fetchall()
    without_age = 0
    for source, record_id, age in landed:
        reported = expected[source, record_id]
        if reported is None or reported < 0:  # absent, or the tool's "unknown": never guessed
            without_age += 1
            assert age is None, (source, record_id)
        else:
            assert age == reported
    assert without_age > 0, "the world must send responses without the age field"


def test_the_age_check_refuses_what_is_not_an_age() -> None:
    check = v.age("metadata.age")
    assert check({"metadata": {}}) is None
    assert check({"metadata": {"age": 15}}) is None
    assert check({"metadata": {"age": -1}}) is None  # the tool's "unknown": kept as unknown, not as an age
    assert v.split(check({"metadata": {"age": "15"}})) == ("wrong type for age in metadata.age", "'15'")
    assert check({"metadata": {"age": True}}) is not None
    assert v.split(check({"metadata": {"age": 200}})) == ("impossible age in metadata.age", "200")


def test_the_warehouse_refuses_an_impossible_age(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO core.survey_response (survey_id, submitted_at, age_reported, source, source_record_id)"
            " VALUES ('s', now(), 200, 'test', 'x')"
        )


def test_responses_synced_before_their_participants_are_linked_when_the_participants_arrive(
    warehouse_url: str, survey_world: World, sync: SyncFn
) -> None:
    end = datetime.now(UTC)
    sync("moodle.users", end)
    sync("zigpoll.responses", end)
    with psycopg.connect(warehouse_url) as conn:
        count = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
        landed = count("SELECT count(*) FROM core.survey_response WHERE source = 'zigpoll'")
        assert landed == survey_world.truth.expected_count("zigpoll", "responses") - len(
            survey_world.truth.malformed("zigpoll", "responses")
        )
        assert count("SELECT count(*) FROM core.survey_response WHERE person_id IS NOT NULL") == 0

        sync("zigpoll.participants", end)

        assert count("SELECT count(*) FROM core.survey_response WHERE source = 'zigpoll'") == landed
        linked = count(
            "SELECT count(*) FROM core.survey_response r JOIN core.person_source_id m"
            " ON m.source = 'zigpoll.participant' AND m.source_record_id = r.respondent_ref"
            " WHERE r.person_id = m.person_id AND r.consent_id IS NOT NULL"
        )
        unlinked_known = count(
            "SELECT count(*) FROM core.survey_response r JOIN core.person_source_id m"
            " ON m.source = 'zigpoll.participant' AND m.source_record_id = r.respondent_ref"
            " WHERE r.person_id IS NULL OR r.consent_id IS NULL"
        )
    assert linked > 0.8 * landed
    assert unlinked_known == 0


def test_rerunning_the_same_interval_changes_nothing(warehouse_url: str, sync: SyncFn) -> None:
    end = datetime.now(UTC)
    _sync_surveys(sync, end)
    before = snapshot(warehouse_url, SNAPSHOT_TABLES)
    audit = "SELECT count(*) FROM audit.audit_events WHERE action <> 'import'"
    with psycopg.connect(warehouse_url) as conn:
        changes_before = conn.execute(audit).fetchone()[0]

    _sync_surveys(sync, end, run="run-2")

    assert snapshot(warehouse_url, SNAPSHOT_TABLES) == before
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute(audit).fetchone()[0] == changes_before, "a re-run wrote row or consent changes"


def test_participants_and_responses_syncing_side_by_side_leave_no_response_unlinked(
    warehouse_url: str, sync: SyncFn
) -> None:
    import threading
    import time

    end = datetime.now(UTC)
    sync("moodle.users", end)
    # Hold the lock both streams take before touching the links, start both, then let them go: they
    # run one after the other from there, whichever goes first, and the second sees the first's rows.
    with psycopg.connect(warehouse_url) as holder:
        holder.execute("SELECT pg_advisory_lock(hashtext('cdp.sync:zigpoll.respondents'))")
        errors: list[BaseException] = []

        def run(key: str) -> None:
            try:
                sync(key, end)
            except BaseException as error:  # noqa: BLE001 - reported by the assertion below
                errors.append(error)

        threads = [
            threading.Thread(target=run, args=(k,)) for k in ("zigpoll.responses", "zigpoll.participants")
        ]
        for thread in threads:
            thread.start()
        waiting = 0
        for _ in range(600):  # both land their pages, then queue on the lock
            waiting = holder.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).fetchone()[0]
            if waiting == 2:
                break
            time.sleep(0.1)
        assert waiting == 2, "both streams wait for their turn on the lock"
        holder.execute("SELECT pg_advisory_unlock(hashtext('cdp.sync:zigpoll.respondents'))")
        for thread in threads:
            thread.join(timeout=120)
    assert not errors
    with psycopg.connect(warehouse_url) as conn:
        unlinked = conn.execute(
            "SELECT count(*) FROM core.survey_response r JOIN core.person_source_id m"
            " ON m.source = 'zigpoll.participant' AND m.source_record_id = r.respondent_ref"
            " WHERE r.person_id IS DISTINCT FROM m.person_id OR r.consent_id IS NULL"
        ).fetchone()[0]
        landed = conn.execute(
            "SELECT count(*) FROM core.survey_response WHERE person_id IS NOT NULL"
        ).fetchone()[0]
    assert unlinked == 0 and landed > 0
