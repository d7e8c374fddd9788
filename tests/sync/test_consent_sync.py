"""Consent from the registration form (Moodle profile fields) and the survey tools into core.consent:
one row per statement version with its evidence, nothing added by a re-sync or an edit that leaves
consent alone, a change adds a row that becomes the current statement, and a withdrawal at the source
lands as `withdrawn` by the next sync, with one `consent` audit event per run that changed consent."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from cdp.sources.validation import split
from cdp.sync.specs import spec_for
from cdp_sandbox.generator import World

SyncFn = Callable[..., Any]


def _field(user: dict, shortname: str) -> str:
    return next(f["value"] for f in user["customfields"] if f["shortname"] == shortname)


def _valid_users(world: World) -> list[dict]:
    bad = set(world.truth.malformed("moodle", "users"))
    return [u for u in world.records("moodle", "users") if u["id"] not in bad]


def _consent_events(url: str) -> list[tuple[str, dict]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT entity_type, details FROM audit.audit_events WHERE action = 'consent' ORDER BY seq"
        ).fetchall()


def _history(url: str, user_id: int, purpose: str) -> list[tuple]:
    """(status, stated_at, source_record_id) of one user's statements for a purpose, oldest first."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT c.status, c.stated_at, c.source_record_id FROM core.consent c"
            " JOIN core.person_source_id m ON m.person_id = c.person_id AND m.source = 'moodle.user'"
            " WHERE m.source_record_id = %s AND c.purpose = %s AND c.source = 'moodle'"
            " ORDER BY c.stated_at, c.recorded_at",
            (str(user_id), purpose),
        ).fetchall()


def _current(url: str, user_id: int, purpose: str) -> str:
    """The latest explicit statement for the person and purpose, whatever its source."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT c.status FROM core.consent c"
            " JOIN core.person_source_id m ON m.person_id = c.person_id AND m.source = 'moodle.user'"
            " WHERE m.source_record_id = %s AND c.purpose = %s ORDER BY c.stated_at DESC, c.recorded_at DESC LIMIT 1",
            (str(user_id), purpose),
        ).fetchone()[0]


def test_registration_form_consent_lands_with_its_evidence(
    warehouse_url: str, survey_world: World, sync: SyncFn
) -> None:
    sync("moodle.users", datetime.now(UTC))

    users = _valid_users(survey_world)
    expected = {}
    for user in users:
        expected[str(user["id"]), "fundraising"] = {"1": "given", "0": "refused"}[
            _field(user, "marketingconsent")
        ]
        parental = _field(user, "parentalconsent")
        if parental in ("pending", "verified"):
            expected[str(user["id"]), "course_messages"] = f"parental_consent_{parental}"
    assert any(status == "parental_consent_pending" for status in expected.values())
    assert any(status == "parental_consent_verified" for status in expected.values())
    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute(
            "SELECT c.evidence ->> 'moodle_user_id', c.purpose, c.status, c.lawful_basis, c.given_by,"
            "       c.parental_method, c.receipt_id, c.jurisdiction, p.jurisdiction, c.person_id = m.person_id"
            " FROM core.consent c JOIN core.person p USING (person_id)"
            " JOIN core.person_source_id m"
            " ON m.source = 'moodle.user' AND m.source_record_id = c.evidence ->> 'moodle_user_id'"
            " WHERE c.source = 'moodle'"
        ).fetchall()
    assert {(user, purpose): status for user, purpose, status, *_ in rows} == expected
    assert len(rows) == len(expected)
    for user, purpose, _, basis, given_by, method, receipt, jurisdiction, person_jurisdiction, same in rows:
        assert same and basis == "consent" and receipt.startswith(f"moodle.user:{user}@")
        assert jurisdiction == person_jurisdiction
        if purpose == "course_messages":
            assert given_by == "parent or guardian" and method
        else:
            assert given_by == "self" and method is None
    events = _consent_events(warehouse_url)
    assert [entity for entity, _ in events] == ["moodle.users"]
    assert events[0][1]["rows_added"] == len(expected)
    assert sum(events[0][1]["by_status"].values()) == len(expected)


def test_a_resync_and_an_edit_that_leaves_consent_alone_add_nothing(
    warehouse_url: str, survey_world: World, sync: SyncFn
) -> None:
    first_end = datetime.now(UTC) - timedelta(hours=1)
    sync("moodle.users", first_end)
    with psycopg.connect(warehouse_url) as conn:
        before = sorted(r[0] for r in conn.execute("SELECT c::text FROM core.consent c"))

    sync("moodle.users", first_end, run="run-2")  # the same interval again
    user = _valid_users(survey_world)[10]
    survey_world.touch(
        "moodle", "users", [user["id"]], first_end + timedelta(minutes=5)
    )  # edited, same consent
    result = sync("moodle.users", first_end + timedelta(hours=2), start=first_end, run="run-3")

    assert result.rows_read >= 1
    with psycopg.connect(warehouse_url) as conn:
        assert sorted(r[0] for r in conn.execute("SELECT c::text FROM core.consent c")) == before
    assert len(_consent_events(warehouse_url)) == 1, "only the first run changed consent"


def test_a_withdrawal_at_the_source_lands_as_withdrawn_by_the_next_sync(
    warehouse_url: str, survey_world: World, sync: SyncFn
) -> None:
    world = survey_world
    first_end = datetime.now(UTC) - timedelta(hours=1)
    sync("moodle.users", first_end)
    user = next(u for u in _valid_users(world) if _field(u, "marketingconsent") == "1")
    person = int(world.table("moodle", "users").person[world.table("moodle", "users").index_of(user["id"])])
    assert _current(warehouse_url, user["id"], "fundraising") == "given"
    original = _history(warehouse_url, user["id"], "fundraising")

    # The learner unticks "I agree to receive news by email" on their profile.
    world.marketing_opt_in[person] = False
    withdrawn_at = first_end + timedelta(minutes=10)
    world.touch("moodle", "users", [user["id"]], withdrawn_at)
    sync("moodle.users", first_end + timedelta(hours=2), start=first_end, run="run-2")

    history = _history(warehouse_url, user["id"], "fundraising")
    assert history[:-1] == original, "history is kept: the earlier statement is not overwritten"
    assert [status for status, *_ in history] == ["given", "withdrawn"]
    assert history[-1][1] == withdrawn_at.replace(microsecond=0)
    assert _current(warehouse_url, user["id"], "fundraising") == "withdrawn"
    entity, details = _consent_events(warehouse_url)[-1]
    assert (entity, details["rows_added"], details["by_status"]) == ("moodle.users", 1, {"withdrawn": 1})

    # Ticked again later: a new explicit statement, which is now the current one.
    world.marketing_opt_in[person] = True
    world.touch("moodle", "users", [user["id"]], first_end + timedelta(hours=2, minutes=10))
    sync("moodle.users", first_end + timedelta(hours=4), start=first_end + timedelta(hours=2), run="run-3")
    assert [status for status, *_ in _history(warehouse_url, user["id"], "fundraising")] == [
        "given",
        "withdrawn",
        "given",
    ]
    assert _current(warehouse_url, user["id"], "fundraising") == "given"


def test_parental_consent_verified_later_adds_a_row_that_becomes_current(
    warehouse_url: str, survey_world: World, sync: SyncFn
) -> None:
    world = survey_world
    first_end = datetime.now(UTC) - timedelta(hours=1)
    sync("moodle.users", first_end)
    user = next(u for u in _valid_users(world) if _field(u, "parentalconsent") == "pending")
    person = int(world.table("moodle", "users").person[world.table("moodle", "users").index_of(user["id"])])
    assert _current(warehouse_url, user["id"], "course_messages") == "parental_consent_pending"

    world.parental_consent[person] = 2  # the parent's consent was verified
    world.touch("moodle", "users", [user["id"]], first_end + timedelta(minutes=15))
    sync("moodle.users", first_end + timedelta(hours=2), start=first_end, run="run-2")

    assert [s for s, *_ in _history(warehouse_url, user["id"], "course_messages")] == [
        "parental_consent_pending",
        "parental_consent_verified",
    ]
    assert _current(warehouse_url, user["id"], "course_messages") == "parental_consent_verified"

    # The parental consent is taken off the form again: that is a withdrawal, not silence.
    world.parental_consent[person] = 0
    world.touch("moodle", "users", [user["id"]], first_end + timedelta(hours=2, minutes=30))
    sync("moodle.users", first_end + timedelta(hours=4), start=first_end + timedelta(hours=2), run="run-3")
    assert _current(warehouse_url, user["id"], "course_messages") == "withdrawn"


def test_survey_tools_consent_lands_once_per_statement_with_an_audit_event(
    warehouse_url: str, survey_world: World, sync: SyncFn
) -> None:
    end = datetime.now(UTC)
    sync("moodle.users", end)
    participants = sync("zigpoll.participants", end)
    responses = sync("typeform.responses", end)
    with psycopg.connect(warehouse_url) as conn:
        counts = dict(conn.execute("SELECT source, count(*) FROM core.consent GROUP BY source").fetchall())
    assert counts["zigpoll"] == participants.rows_upserted
    assert counts["typeform"] == responses.rows_upserted  # every valid response carries the consent answer
    events = {entity: details for entity, details in _consent_events(warehouse_url)}
    assert events["zigpoll.participants"]["rows_added"] == counts["zigpoll"]
    assert events["typeform.responses"]["rows_added"] == counts["typeform"]

    sync("zigpoll.participants", end, run="run-2")
    sync("typeform.responses", end, run="run-2")
    with psycopg.connect(warehouse_url) as conn:
        again = dict(conn.execute("SELECT source, count(*) FROM core.consent GROUP BY source").fetchall())
    assert again == counts
    assert len(_consent_events(warehouse_url)) == len(events)


def test_an_unknown_consent_value_is_quarantined_not_guessed() -> None:
    check = spec_for("moodle", "users").check
    user = {"id": 3, "firstname": "A", "email": "a@example.org",
            "customfields": [{"shortname": "marketingconsent", "value": "yes"}]}  # fmt: skip
    assert split(check(user)) == ("unknown value in marketingconsent", "'yes'")
    user["customfields"][0]["value"] = "1"
    assert check(user) is None
    participant = {"_id": "p", "createdAt": "2024-01-01T00:00:00Z", "email": "a@example.org",
                   "metadata": {"moodle_user_id": "3"}, "consent": {"status": "perhaps"}}  # fmt: skip
    assert split(spec_for("zigpoll", "participants").check(participant)) == (
        "unknown value in consent.status",
        "'perhaps'",
    )
    participant["consent"]["status"] = "withdrawn"
    assert spec_for("zigpoll", "participants").check(participant) is None


def test_a_zigpoll_consent_declined_after_it_was_granted_lands_as_a_withdrawal(
    warehouse_url: str, survey_world: World, sync: SyncFn
) -> None:
    world = survey_world
    first_end = datetime.now(UTC) - timedelta(hours=1)
    sync("moodle.users", first_end)
    sync("zigpoll.participants", first_end)
    table = world.table("zigpoll", "participants")
    with psycopg.connect(warehouse_url) as conn:
        participant_id, first_stated = conn.execute(
            "SELECT evidence ->> 'participant_id', stated_at FROM core.consent"
            " WHERE source = 'zigpoll' AND status = 'given' ORDER BY statement_key LIMIT 1"
        ).fetchone()

    # The participant declines on Zigpoll's consent slide; Zigpoll keeps the first collection time, and a
    # participant is only listed again by a re-read of its creation window (the stream's cursor is createdAt).
    table.columns["consent_research"][table.index_of(participant_id)] = False
    sync("zigpoll.participants", first_end + timedelta(hours=2), start=world.start, run="backfill")

    with psycopg.connect(warehouse_url) as conn:
        history = conn.execute(
            "SELECT status, stated_at, evidence ->> 'source_stated_at' FROM core.consent"
            " WHERE statement_key = %s ORDER BY stated_at",
            (f"zigpoll.participant:{participant_id}",),
        ).fetchall()
        changed = conn.execute("SELECT count(*) FROM core.consent WHERE source = 'zigpoll'").fetchone()[0]
    assert [status for status, *_ in history] == ["given", "withdrawn"]
    assert history[0][1] == first_stated
    assert history[1][1] > first_stated, "the withdrawal sorts as the latest statement"
    assert history[1][2] == history[0][2], "the source's own time is kept in the evidence"
    assert changed == len(history) - 1 + sum(
        1
        for p in world.records("zigpoll", "participants")
        if p["_id"] not in world.truth.malformed("zigpoll", "participants")
        and p["metadata"]["moodle_user_id"] not in {str(i) for i in world.truth.malformed("moodle", "users")}
    ), "the backfill added exactly one row: the withdrawal"
