"""A response delivered by webhook and read again by the polling catch-up (or the other way round) is one
core row with the same content: the webhook body is adapted to the polled stream's shape, and both paths
run the same spec and SQL. Checked with the sandbox's own Typeform and Zigpoll records."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from fastapi.testclient import TestClient
from webhook_requests import settings, signed

from cdp.sources import registry
from cdp.sync.engine import SyncResult, sync_stream
from cdp.sync.specs import BY_KEY
from cdp.warehouse import Actor
from cdp.webhooks import formats
from cdp.webhooks import stream as webhook_stream
from cdp.webhooks.app import create_app
from cdp.webhooks.intake import Intake
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer

ACTOR = Actor("test-webhook-and-poll")
ROW = (
    "SELECT person_id::text, survey_id, submitted_at, age_reported, answers, respondent_ref, consent_id::text,"
    " updated_at FROM core.survey_response WHERE source = %s AND source_record_id = %s"
)


@pytest.fixture
def client(warehouse_url: str) -> Iterator[TestClient]:
    """The intake, accepting Typeform deliveries of any age: the sandbox's responses are years old, and
    Typeform signs no timestamp (the age window is the only replay guard, tested in test_intake.py)."""
    intake = Intake(warehouse_url, dataclasses.replace(settings(), typeform_max_age_seconds=10**10))
    with TestClient(create_app(lambda: intake)) as test_client:
        yield test_client
    intake.close()


@pytest.fixture
def world() -> World:
    return World(seed=23, learners=200, malformed_rate=0.0)


@pytest.fixture
def sandbox(world: World) -> Iterator[SandboxServer]:
    with SandboxServer(world) as server:
        yield server


@pytest.fixture
def poll(warehouse_url: str, sandbox: SandboxServer) -> Callable[[str], SyncResult]:
    def run(key: str) -> SyncResult:
        spec = BY_KEY[key]
        source_stream = registry.stream(spec.source, spec.stream, sandbox.settings(spec.source))
        return sync_stream(
            warehouse_url, source_stream, spec, actor=ACTOR, run_id=f"poll-{uuid.uuid4().hex[:6]}",
            interval_end=datetime.now(UTC),
        )  # fmt: skip

    return run


def typeform_webhook_body(response: dict, form_id: str) -> dict:
    """What Typeform POSTs for a response (its documented webhook shape): no response_id, landing_id or
    metadata, the form's id and definition instead."""
    form_response = {
        key: response[key]
        for key in ("token", "landed_at", "submitted_at", "hidden", "calculated", "answers")
    }
    form_response |= {
        "form_id": form_id,
        "definition": {"id": form_id, "title": "Course feedback", "fields": []},
    }
    return {
        "event_id": uuid.uuid4().hex.upper()[:26],
        "event_type": "form_response",
        "form_response": form_response,
    }


def zigpoll_webhook_body(response: dict) -> dict:
    return {"id": f"evt_{uuid.uuid4().hex[:16]}", "type": "response.created", "createdAt": response["createdAt"],
            "data": response}  # fmt: skip


def _deliver(client, source: str, body: dict) -> None:
    content, headers = signed(source, body)
    answer = client.post(f"/{source}", content=content, headers=headers)
    assert answer.status_code == 200 and answer.json()["status"] == "accepted", answer.text


def _process(url: str, key: str) -> SyncResult:
    return webhook_stream.process_pending(
        url, BY_KEY[key], actor=ACTOR, run_id=f"hook-{uuid.uuid4().hex[:6]}"
    )


def _rows(url: str, source: str, record_ids: list[str]) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as conn:
        return {record_id: conn.execute(ROW, (source, record_id)).fetchall() for record_id in record_ids}


def test_a_typeform_response_by_webhook_and_by_poll_is_one_row(
    client, warehouse_url: str, world: World, poll
) -> None:
    poll("moodle.users")
    responses = list(world.records("typeform", "responses"))
    pushed, polled_first = responses[:4], responses[4:6]
    form_id = world.ids.typeform_form_id

    for response in pushed:
        _deliver(client, "typeform", typeform_webhook_body(response, form_id))
    result = _process(warehouse_url, "typeform.responses")
    assert (result.rows_read, result.rows_quarantined) == (4, 0)
    tokens = [r["token"] for r in pushed]
    by_webhook = _rows(warehouse_url, "typeform", tokens)
    assert all(len(rows) == 1 for rows in by_webhook.values()), by_webhook
    assert {rows[0][1] for rows in by_webhook.values()} == {form_id}  # survey id as the poll names it

    assert poll("typeform.responses").rows_read == len(responses)
    # The poll re-read the same responses and found nothing to change: same single row, not even touched.
    assert _rows(warehouse_url, "typeform", tokens) == by_webhook
    # And the other way round: polled first, delivered late by webhook.
    late = [r["token"] for r in polled_first]
    by_poll = _rows(warehouse_url, "typeform", late)
    for response in polled_first:
        _deliver(client, "typeform", typeform_webhook_body(response, form_id))
    assert _process(warehouse_url, "typeform.responses").rows_read == 2
    assert _rows(warehouse_url, "typeform", late) == by_poll
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute(
            "SELECT count(*), count(DISTINCT source_record_id) FROM core.survey_response WHERE source = 'typeform'"
        ).fetchone() == (len(responses), len(responses))
        # One consent statement per response (its may_contact answer), whichever path brought it first.
        statements = conn.execute(
            "SELECT statement_key, count(*) FROM core.consent WHERE statement_key = ANY(%s) GROUP BY 1",
            ([f"typeform.response:{t}" for t in tokens + late],),
        ).fetchall()
    assert sorted(statements) == sorted((f"typeform.response:{t}", 1) for t in tokens + late)


def test_the_raw_typeform_webhook_body_would_not_fit_the_polled_spec() -> None:
    """The adapter is what makes it fit: the body as sent lacks the polled stream's primary key."""
    world = World(seed=23, learners=50, malformed_rate=0.0)
    response = next(iter(world.records("typeform", "responses")))
    body = typeform_webhook_body(response, world.ids.typeform_form_id)
    spec = BY_KEY["typeform.responses"]
    assert spec.check(body["form_response"]) == "missing required field response_id"
    record = formats.record_of("typeform", body)
    assert spec.check(record) is None
    assert record["response_id"] == response["response_id"] and "definition" not in record


def test_a_zigpoll_response_by_webhook_and_by_poll_is_one_row(
    client, warehouse_url: str, world: World, poll
) -> None:
    poll("moodle.users")
    poll("zigpoll.participants")
    responses = list(world.records("zigpoll", "responses"))
    pushed = responses[:3]
    for response in pushed:
        _deliver(client, "zigpoll", zigpoll_webhook_body(response))
    assert _process(warehouse_url, "zigpoll.responses").rows_read == 3
    ids = [r["_id"] for r in pushed]
    by_webhook = _rows(warehouse_url, "zigpoll", ids)
    assert all(len(rows) == 1 for rows in by_webhook.values())

    assert poll("zigpoll.responses").rows_read == len(responses)
    assert _rows(warehouse_url, "zigpoll", ids) == by_webhook
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute(
            "SELECT count(*), count(DISTINCT source_record_id) FROM core.survey_response WHERE source = 'zigpoll'"
        ).fetchone() == (len(responses), len(responses))
