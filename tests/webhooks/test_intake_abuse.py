"""The intake under attack (issue 15, item 8): unsigned floods write a bounded number of rows and no body,
unknown sources store nothing, and a signed delivery PostgreSQL cannot hold as JSON (a ``\\u0000``, invalid
JSON, another encoding) is answered 2xx and kept byte for byte where an operator sees it, never a 503 loop,
and never in the logs."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from webhook_requests import SECRETS, settings, signed, typeform_payload, zigpoll_payload

from cdp.warehouse import Actor
from cdp.webhooks import signatures
from cdp.webhooks.app import create_app
from cdp.webhooks.intake import Intake

TABLES_SQL = (
    "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname IN ('raw', 'ops', 'core', 'audit') AND c.relkind = 'r' ORDER BY 1"
)
MARKER = "Zebra-Quartz-4471"  # stands for personal data in a body: must never reach a log or a rejection


def _row_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        tables = [row[0] for row in conn.execute(TABLES_SQL)]
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def _query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture
def fixed_hour_client(warehouse_url: str) -> Iterator[TestClient]:
    """A client whose intake's clock stands still, so a flood cannot straddle an hour and split its counters."""
    now = time.time()
    instance = Intake(warehouse_url, settings(), clock=lambda: now)
    with TestClient(create_app(lambda: instance)) as test_client:
        yield test_client
    instance.close()


def test_an_unsigned_flood_writes_a_bounded_number_of_rows_and_no_body(
    fixed_hour_client: TestClient, warehouse_url: str
) -> None:
    before = _row_counts(warehouse_url)
    junk = (MARKER + "x" * 20_000).encode()
    posts = {"typeform": 0, "zigpoll": 0, "registration": 0}
    made_up = [f"source-{n}" for n in range(5)]
    for index in range(500):
        target = list(posts)[index % 3] if index % 4 else made_up[index % 5]
        headers = {"Content-Type": "application/json"}
        if index % 8 == 1:  # a signature header that is wrong rather than missing
            headers[signatures.HEADERS.get(target, "x-signature")] = "t=1,v1=00"
        response = fixed_hour_client.post(f"/{target}", content=junk + str(index).encode(), headers=headers)
        assert response.status_code in (401, 404), response.text
        if target in posts:
            posts[target] += 1
    after = _row_counts(warehouse_url)
    grown = {table: after[table] - before[table] for table in after if after[table] != before[table]}

    # Nothing of a body is stored anywhere; made-up names leave no trace.
    assert _query(warehouse_url, "SELECT count(*) FROM ops.webhook_rejection WHERE body IS NOT NULL") == [
        (0,)
    ]
    assert not _query(warehouse_url, "SELECT 1 FROM ops.webhook_rejection WHERE source LIKE 'source-%%'"), (
        "made-up source names were stored"
    )
    # One counter row per source, reason and hour, plus at most a fixed number of detail rows each.
    from cdp.webhooks.intake import KEEP_REJECTIONS_PER_HOUR

    counters = _query(
        warehouse_url,
        "SELECT source, status_code, reason, requests FROM ops.webhook_rejection_count ORDER BY 1, 3",
    )
    assert {(source, status) for source, status, _, _ in counters} == {(s, 401) for s in posts}
    assert {source: sum(r[3] for r in counters if r[0] == source) for source in posts} == posts
    assert grown == {
        "ops.webhook_rejection_count": len(counters),
        "ops.webhook_rejection": sum(min(r[3], KEEP_REJECTIONS_PER_HOUR) for r in counters),
    }
    assert len(counters) <= 3 * 2  # sources × (missing | wrong signature)


def test_an_unknown_source_stores_nothing(client: TestClient, warehouse_url: str) -> None:
    before = _row_counts(warehouse_url)
    body, headers = signed("typeform", typeform_payload())
    for name in ("surveymonkey", "typeform2", "x" * 200):
        response = client.post(f"/{name}", content=body, headers=headers)
        assert response.status_code == 404
        assert response.json() == {"error": "unknown webhook source"}
    assert _row_counts(warehouse_url) == before


NUL_CASES = {
    "a \\u0000 in a string": lambda: (
        json.dumps(typeform_payload())
        .replace('"Course feedback"', f'"Course {MARKER}\\u0000 feedback"')
        .encode()
    ),
    "invalid JSON": lambda: json.dumps(typeform_payload()).encode()[:-2] + f" {MARKER}".encode(),
    "not UTF-8": lambda: (
        json.dumps(typeform_payload()).replace("Course", f"Caf\xe9 {MARKER}").encode("latin-1")
    ),
    "NaN": lambda: (
        json.dumps(typeform_payload()).replace('"number": 9', f'"number": NaN, "n": "{MARKER}"').encode()
    ),
    "a lone surrogate": lambda: (
        json.dumps(typeform_payload()).replace('"Course feedback"', f'"{MARKER} \\ud800"').encode()
    ),
    "a 5000-digit number": lambda: (
        json.dumps(typeform_payload())
        .replace('"number": 9', f'"number": {"9" * 5000}, "n": "{MARKER}"')
        .encode()
    ),
}


@pytest.mark.parametrize("case", list(NUL_CASES))
def test_a_signed_delivery_postgres_cannot_hold_as_json_is_acknowledged_and_kept_byte_for_byte(
    client: TestClient, warehouse_url: str, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = NUL_CASES[case]()
    body, headers = signed("typeform", body)

    first = client.post("/typeform", content=body, headers=headers)
    retry = client.post("/typeform", content=body, headers=headers)  # the sender's retry of the same bytes

    assert first.status_code == 200, first.text
    assert first.json()["status"] == "kept"
    assert retry.status_code == 200 and retry.json()["status"] == "kept"
    kept = _query(
        warehouse_url,
        "SELECT source, body, body_bytes, body_sha256, deliveries, resolved_at FROM ops.webhook_undeliverable",
    )
    assert len(kept) == 1
    source, stored, size, digest, deliveries, resolved_at = kept[0]
    assert (source, bytes(stored), size, deliveries, resolved_at) == ("typeform", body, len(body), 2, None)
    assert digest == hashlib.sha256(body).hexdigest()
    assert _query(warehouse_url, "SELECT count(*) FROM raw.records") == [(0,)]
    assert MARKER not in caplog.text
    assert MARKER not in first.text


def test_a_signed_nul_delivery_from_each_timestamped_sender_is_kept(
    client: TestClient, warehouse_url: str
) -> None:
    payload = zigpoll_payload()
    payload["data"]["response"] = "9\u0000"
    body, headers = signed("zigpoll", json.dumps(payload).encode())
    assert b"\\u0000" in body
    response = client.post("/zigpoll", content=body, headers=headers)
    assert response.status_code == 200 and response.json()["status"] == "kept"
    assert [bytes(row[0]) for row in _query(warehouse_url, "SELECT body FROM ops.webhook_undeliverable")] == [
        body
    ]
    # An unsigned copy of the same bytes, or one signed with another source's secret, is refused and keeps nothing.
    response = client.post("/zigpoll", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 401
    _, other_secret = signed("zigpoll", body, secret=SECRETS["typeform"])
    assert client.post("/zigpoll", content=body, headers=other_secret).status_code == 401
    assert _query(warehouse_url, "SELECT sum(deliveries) FROM ops.webhook_undeliverable") == [(1,)]


def test_no_body_reaches_the_logs_or_the_rejections(
    client: TestClient, warehouse_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    payload = typeform_payload()
    payload["form_response"]["hidden"]["note"] = f"{MARKER}\u0000"
    body, headers = signed("typeform", payload)
    signed_answer = client.post("/typeform", content=body, headers=headers)
    unsigned = json.dumps(typeform_payload()).replace("Course feedback", MARKER).encode()
    unsigned_answer = client.post("/typeform", content=unsigned, headers={"Content-Type": "application/json"})
    assert MARKER not in caplog.text
    assert (signed_answer.status_code, unsigned_answer.status_code) == (200, 401)
    rows = _query(warehouse_url, "SELECT row_to_json(r)::text FROM ops.webhook_rejection r")
    assert rows and not any(MARKER in row[0] for row in rows)


def test_undeliverable_deliveries_raise_one_data_alert_until_resolved(
    client: TestClient, warehouse_url: str
) -> None:
    body, headers = signed("typeform", b'{"event_id": "E1", "x": "' + MARKER.encode() + b'\\u0000"}')
    assert client.post("/typeform", content=body, headers=headers).json()["status"] == "kept"
    from cdp.webhooks.stream import alert_undeliverable

    sent: list[str] = []
    actor = Actor("test-webhooks")

    first = alert_undeliverable(warehouse_url, run_id="run-1", send=sent.append, actor=actor)
    again = alert_undeliverable(warehouse_url, run_id="run-2", send=sent.append, actor=actor)

    assert first.new_or_changed == ("webhook_undeliverable:typeform",) and not again.sent
    assert len(sent) == 1 and "1 signed delivery" in sent[0] and "ops.webhook_undeliverable" in sent[0]
    assert MARKER not in sent[0]
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE ops.webhook_undeliverable SET resolved_at = now(), resolution = 'asked Typeform'"
        )
    cleared = alert_undeliverable(warehouse_url, run_id="run-3", send=sent.append, actor=actor)
    assert cleared.cleared == ("webhook_undeliverable:typeform",)


def test_an_erasure_blanks_a_kept_body_that_holds_the_persons_email(
    client: TestClient, warehouse_url: str
) -> None:
    from privacy_seed import add_person, years_ago

    from cdp import privacy

    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        person = add_person(conn, born=years_ago(30), email="Erase.Me@example.org")
    mine = b'{"event_id": "E1", "email": "erase.me@example.org", "note": "\\u0000"}'
    other = b'{"event_id": "E2", "email": "someone.else@example.org", "note": "\\u0000"}'
    for body in (mine, other):
        body, headers = signed("typeform", body)
        assert client.post("/typeform", content=body, headers=headers).json()["status"] == "kept"

    result = privacy.erase_person(warehouse_url, person, "DSR-WEBHOOK-1", Actor("test-dpo"))

    assert result.counts["webhook_undeliverable_erased"] == 1
    rows = _query(
        warehouse_url,
        "SELECT body, body_bytes, body_sha256, resolved_at IS NOT NULL FROM ops.webhook_undeliverable"
        " ORDER BY undeliverable_id",
    )
    assert rows[0][0] is None and rows[0][1:] == (len(mine), hashlib.sha256(mine).hexdigest(), True)
    assert bytes(rows[1][0]) == other and rows[1][3] is False


def test_concurrent_unsigned_posts_keep_exactly_the_capped_number_of_detail_rows(warehouse_url: str) -> None:
    from cdp.webhooks.intake import KEEP_REJECTIONS_PER_HOUR

    now = time.time()
    instance = Intake(warehouse_url, settings(), pool_size=4, clock=lambda: now)
    headers = {"Content-Type": "application/json"}

    def flood() -> None:
        for index in range(30):
            assert instance.receive("registration", headers, f"{MARKER}{index}".encode()).status == 401

    threads = [threading.Thread(target=flood) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    instance.close()

    assert _query(warehouse_url, "SELECT reason, requests FROM ops.webhook_rejection_count") == [
        ("bad_signature", 240)
    ]
    assert _query(warehouse_url, "SELECT count(*), count(body) FROM ops.webhook_rejection") == [
        (KEEP_REJECTIONS_PER_HOUR, 0)
    ]
