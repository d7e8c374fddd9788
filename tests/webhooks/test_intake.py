"""The webhook intake over HTTP: signatures, replays, duplicates, malformed requests, and the payload in
raw before the 2xx."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from webhook_requests import (
    REGISTRATION_FORM,
    SECRETS,
    iso,
    signed,
    typeform_payload,
    zigpoll_payload,
)

from cdp.webhooks import signatures
from cdp.webhooks.app import CoalescingNotifier, create_app

CORE_TABLES_SQL = (
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = 'core' AND c.relkind = 'r' ORDER BY 1"
)


def _core_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        tables = [row[0] for row in conn.execute(CORE_TABLES_SQL)]
        return {t: conn.execute(f"SELECT count(*) FROM core.{t}").fetchone()[0] for t in tables}


def _raw(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT source, stream, source_record_id, payload FROM raw.records ORDER BY raw_id"
        ).fetchall()


def _rejections(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT source, status_code, reason, body IS NOT NULL, body_bytes"
            " FROM ops.webhook_rejection ORDER BY rejection_id"
        ).fetchall()


def test_a_signed_typeform_event_lands_in_raw_and_is_acknowledged(
    client: TestClient, warehouse_url: str
) -> None:
    payload = typeform_payload("EVT-1")
    body, headers = signed("typeform", payload)
    response = client.post("/typeform", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "accepted", "event_id": "EVT-1"}
    assert _raw(warehouse_url) == [("typeform", "webhook", "EVT-1", payload)]
    with psycopg.connect(warehouse_url) as conn:
        event = conn.execute(
            "SELECT form_id, stream, record_id, processed_at FROM ops.webhook_event WHERE event_id = 'EVT-1'"
        ).fetchone()
    assert event == ("kDnP4xQe", "responses", payload["form_response"]["token"], None)


def test_each_source_signature_scheme_is_checked(client: TestClient, warehouse_url: str) -> None:
    registration = {
        "event_id": "reg-1", "event_type": "registration.submitted", "occurred_at": iso(),
        "form_id": REGISTRATION_FORM,
        "data": {"id": "sub-1", "email": "new@example.org", "date_of_birth": "2001-02-03"},
    }  # fmt: skip
    for source, payload in (("zigpoll", zigpoll_payload("evt_z1")), ("registration", registration)):
        body, headers = signed(source, payload)
        assert client.post(f"/{source}", content=body, headers=headers).json()["status"] == "accepted"
        _, wrong = signed(source, payload, secret="another-secret-of-some-length")
        assert client.post(f"/{source}", content=body, headers=wrong).status_code == 401
    assert [row[:3] for row in _raw(warehouse_url)] == [
        ("zigpoll", "webhook", "evt_z1"),
        ("registration", "webhook", "reg-1"),
    ]


def test_a_repeated_event_is_acknowledged_and_landed_once(client: TestClient, warehouse_url: str) -> None:
    first = zigpoll_payload("evt_dup")
    body, headers = signed("zigpoll", first)
    assert client.post("/zigpoll", content=body, headers=headers).json()["status"] == "accepted"
    assert client.post("/zigpoll", content=body, headers=headers).json() == {
        "status": "duplicate",
        "event_id": "evt_dup",
    }
    # The same event id with another (validly signed) body is the same event: not landed again.
    second = zigpoll_payload("evt_dup", metadata={"course": "other"})
    body, headers = signed("zigpoll", second)
    assert client.post("/zigpoll", content=body, headers=headers).json()["status"] == "duplicate"
    assert [row[3] for row in _raw(warehouse_url)] == [first]


def test_concurrent_deliveries_of_one_event_land_it_once(intake, warehouse_url: str) -> None:
    body, headers = signed("typeform", typeform_payload("EVT-RACE"))
    outcomes = []

    def deliver() -> None:
        outcomes.append(intake.receive("typeform", headers, body).body["status"])

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["accepted"] + ["duplicate"] * 7
    assert len(_raw(warehouse_url)) == 1


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("no signature", 401, "missing typeform-signature"),
        ("wrong secret", 401, "does not match"),
        ("tampered body", 401, "does not match"),
        ("not an object", 422, "missing JSON object"),
        ("no event id", 422, "missing event_id"),
        ("wrong content type", 415, "application/json"),
        ("oversized", 413, "over"),
        ("unknown form", 404, "unknown form"),
        ("stale submission (replay)", 400, "replay refused"),
        ("stale zigpoll signature (replay)", 400, "replay refused"),
        ("future zigpoll signature", 400, "replay refused"),
        ("zigpoll header without timestamp", 401, "t=<seconds>"),
    ],
)
def test_bad_requests_get_a_clear_4xx_are_counted_and_write_nothing_to_core(
    client: TestClient, warehouse_url: str, case: str, status: int, reason: str
) -> None:
    source = "zigpoll" if "zigpoll" in case else "typeform"
    payload = zigpoll_payload() if source == "zigpoll" else typeform_payload()
    body, headers = signed(source, payload)
    if case == "no signature":
        del headers["Typeform-Signature"]
    elif case == "wrong secret":
        body, headers = signed(source, payload, secret="not-the-secret-at-all-000")
    elif case == "tampered body":
        body = body.replace(b'"number": 9', b'"number": 1')
    elif case == "not an object":
        body, headers = signed(source, b"[1, 2, 3]")
    elif case == "no event id":
        del payload["event_id"]
        body, headers = signed(source, payload)
    elif case == "wrong content type":
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif case == "oversized":
        payload["form_response"]["hidden"]["padding"] = "x" * 70_000
        body, headers = signed(source, payload)
    elif case == "unknown form":
        body, headers = signed(source, typeform_payload(form_id="someoneElse"))
    elif case == "stale submission (replay)":
        body, headers = signed(
            source, typeform_payload(submitted_at=iso(datetime.now(UTC) - timedelta(days=2)))
        )
    elif case == "stale zigpoll signature (replay)":
        body, headers = signed(source, payload, timestamp=int(time.time()) - 3600)
    elif case == "future zigpoll signature":
        body, headers = signed(source, payload, timestamp=int(time.time()) + 3600)
    elif case == "zigpoll header without timestamp":
        headers["X-Zigpoll-Signature"] = headers["X-Zigpoll-Signature"].split(",", 1)[1]
    before = _core_counts(warehouse_url)

    response = client.post(f"/{source}", content=body, headers=headers)

    assert response.status_code == status, response.text
    assert reason in response.json()["error"]
    assert _raw(warehouse_url) == []
    assert _core_counts(warehouse_url) == before
    rejections = _rejections(warehouse_url)
    assert [(r[0], r[1]) for r in rejections] == [(source, status)]
    assert reason in rejections[0][2]
    assert rejections[0][3] is False  # a refused body is never kept (a signed one PostgreSQL cannot hold
    # as JSON is not refused: tests/webhooks/test_intake_abuse.py)
    assert rejections[0][4] == len(body)


def test_unknown_source_is_refused(client: TestClient, warehouse_url: str) -> None:
    body, headers = signed("typeform", typeform_payload())
    assert client.post("/surveymonkey", content=body, headers=headers).status_code == 404
    assert _raw(warehouse_url) == []


def test_the_payload_is_in_raw_before_the_2xx(warehouse_url: str, intake) -> None:
    """When raw cannot take the payload, the sender gets no 2xx (it retries), and the event id is not
    claimed: the retry lands it. Only a committed payload is ever acknowledged."""
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION pg_temp_fail() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'disk full'; END $$"
        )
        conn.execute(
            "CREATE TRIGGER fail_raw BEFORE INSERT ON raw.records FOR EACH ROW EXECUTE FUNCTION pg_temp_fail()"
        )
    acknowledged = []
    with TestClient(create_app(lambda: intake)) as client:
        body, headers = signed("typeform", typeform_payload("EVT-RETRY"))
        response = client.post("/typeform", content=body, headers=headers)
        assert response.status_code == 503
        with psycopg.connect(warehouse_url, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM ops.webhook_event").fetchone()[0] == 0
            conn.execute("DROP TRIGGER fail_raw ON raw.records")
        response = client.post("/typeform", content=body, headers=headers)
        assert response.json()["status"] == "accepted"
        acknowledged.append(response.json()["event_id"])
    # Read from another connection right after the answer: it is committed.
    assert [row[2] for row in _raw(warehouse_url)] == acknowledged


def test_landed_events_wake_the_pipeline_once_per_burst(warehouse_url: str, intake) -> None:
    emitted: list[int] = []
    burst_in = threading.Event()

    def emit(count: int) -> None:
        # The first emission is held until the whole burst has landed: on a loaded machine one request
        # can take longer than the interval, and five windows of one event each would look like no coalescing.
        burst_in.wait(10)
        emitted.append(count)

    notifier = CoalescingNotifier(emit, interval=0.3)
    with TestClient(create_app(lambda: intake, notifier)) as client:
        for index in range(5):
            body, headers = signed("zigpoll", zigpoll_payload(f"evt_burst_{index}"))
            assert client.post("/zigpoll", content=body, headers=headers).status_code == 200
        client.post("/zigpoll", content=body, headers=headers)  # a duplicate wakes nothing
        body, headers = signed("zigpoll", b"{")
        client.post("/zigpoll", content=body, headers=headers)  # nor does a body kept undeliverable
        client.post("/zigpoll", content=body, headers={"Content-Type": "application/json"})  # nor a rejection
        burst_in.set()
        deadline = time.monotonic() + 10
        while sum(emitted) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
    assert sum(emitted) == 5
    assert 1 <= len(emitted) < 5


def test_signature_helpers_match_typeforms_documented_format() -> None:
    # Typeform's own example: base64 of HMAC-SHA256 over the raw body, prefixed with "sha256=".
    import base64
    import hashlib
    import hmac

    body = json.dumps({"event_id": "x"}).encode()
    expected = "sha256=" + base64.b64encode(hmac.new(b"secret", body, hashlib.sha256).digest()).decode()
    assert signatures.typeform_signature("secret", body) == expected
    assert signatures.verify("typeform", "secret", {"typeform-signature": expected}, body) is None
    assert SECRETS["typeform"] != "secret"
