"""Landed webhook payloads fed through cdp.sync.engine as a stream of pending intake rows, with a survey
spec defined here (the real Zigpoll/Typeform mappings come with the survey sync): and the case from the
seed story, a survey webhook without the age field, which must not put a minor on a list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from privacy_seed import add_person, eligible, years_ago
from webhook_requests import signed, zigpoll_payload

from cdp.sources import validation as v
from cdp.sync.specs import StreamSpec
from cdp.warehouse import Actor
from cdp.webhooks import stream as webhook_stream

# A survey mapping in the shape the survey sync uses: the response's consent metadata becomes a consent
# statement; the age, when the tool sends one, is kept as reported and never as a date of birth.
ZIGPOLL_RESPONSES_SQL = """
INSERT INTO core.survey_response (person_id, survey_id, submitted_at, age_reported, answers, source, source_record_id)
SELECT m.person_id, b.payload ->> 'pollId', (b.payload ->> 'createdAt')::timestamptz,
       (b.payload #>> '{metadata,age}')::integer, jsonb_build_object('response', b.payload -> 'response'),
       %(source)s, b.source_record_id
FROM sync_batch b
JOIN core.person_source_id m
  ON m.source = 'moodle.user' AND m.source_record_id = b.payload #>> '{metadata,moodle_user_id}'
WHERE b.reason IS NULL
ON CONFLICT (source, source_record_id) DO NOTHING;

INSERT INTO core.consent (person_id, purpose, status, lawful_basis, source, source_record_id, stated_at, evidence)
SELECT m.person_id, 'surveys',
       CASE b.payload #>> '{metadata,consent}' WHEN 'granted' THEN 'given' ELSE 'refused' END,
       'consent', %(source)s, b.source_record_id, (b.payload ->> 'createdAt')::timestamptz,
       jsonb_build_object('method', 'consent_slide')
FROM sync_batch b
JOIN core.person_source_id m
  ON m.source = 'moodle.user' AND m.source_record_id = b.payload #>> '{metadata,moodle_user_id}'
WHERE b.reason IS NULL AND b.payload #>> '{metadata,consent}' IS NOT NULL
ON CONFLICT (source, source_record_id) DO NOTHING;
"""
ACTOR = Actor("test-webhooks")


@pytest.fixture
def zigpoll_spec(tmp_path: Path) -> StreamSpec:
    sql_file = tmp_path / "zigpoll__responses_test.sql"
    sql_file.write_text(ZIGPOLL_RESPONSES_SQL)
    return StreamSpec(
        "zigpoll", "responses", "core.survey_response", 2,
        v.all_of(v.required("_id", "pollId", "createdAt", "metadata.moodle_user_id")),
        (str(sql_file),),  # an absolute path: the engine joins it onto sql/sync/ and gets it back
    )  # fmt: skip


def _learner(conn: psycopg.Connection, moodle_id: str, born, jurisdiction: str = "US") -> str:
    person = add_person(conn, born=born, jurisdiction=jurisdiction)
    conn.execute(
        "INSERT INTO core.person_source_id (source, source_record_id, person_id) VALUES ('moodle.user', %s, %s)",
        (moodle_id, person),
    )
    return person


def _deliver(client, metadata: dict) -> None:
    body, headers = signed("zigpoll", zigpoll_payload(metadata=metadata))
    response = client.post("/zigpoll", content=body, headers=headers)
    assert response.json()["status"] == "accepted", response.text


def test_a_survey_webhook_without_age_never_makes_a_minor_eligible(
    client, warehouse_url: str, zigpoll_spec
) -> None:
    with psycopg.connect(warehouse_url) as conn:
        unknown_age = _learner(conn, "101", None)
        minor = _learner(conn, "102", years_ago(12))
        teen_de = _learner(conn, "103", years_ago(15), "DE")
        adult = _learner(conn, "104", years_ago(30))
    for moodle_id in ("101", "102", "103", "104"):
        _deliver(client, {"course": "python", "moodle_user_id": moodle_id, "consent": "granted"})  # no "age"
    # The seed story's variant: the tool reports an adult age for someone whose age we do not know.
    _deliver(client, {"moodle_user_id": "101", "consent": "granted", "age": 30})

    result = webhook_stream.process_pending(warehouse_url, zigpoll_spec, actor=ACTOR, run_id="run-1")

    assert (result.rows_read, result.rows_upserted, result.rows_quarantined) == (5, 5, 0)
    with psycopg.connect(warehouse_url) as conn:
        reported = conn.execute(
            "SELECT age_reported FROM core.survey_response ORDER BY age_reported"
        ).fetchall()
        assert reported == [(30,), (None,), (None,), (None,), (None,)]
        statuses = conn.execute("SELECT DISTINCT status FROM core.consent").fetchall()
        assert statuses == [("given",)]
        assert eligible(conn, "surveys") == {adult}
        reasons = dict(
            conn.execute(
                "SELECT person_id::text, refusal_reason FROM mart.outreach_decision WHERE purpose = 'surveys'"
            ).fetchall()
        )
    assert reasons[unknown_age] == "age_unknown"
    assert reasons[minor] == reasons[teen_de] == "minor_without_verified_parental_consent"
    assert reasons[adult] is None


def test_processing_marks_events_done_and_leaves_the_polling_watermark_alone(
    client, warehouse_url: str, zigpoll_spec
) -> None:
    with psycopg.connect(warehouse_url) as conn:
        _learner(conn, "201", years_ago(40))
    _deliver(client, {"moodle_user_id": "201", "consent": "granted"})
    _deliver(client, {"consent": "granted"})  # no learner id: the spec rejects it, the quarantine keeps it

    first = webhook_stream.process_pending(warehouse_url, zigpoll_spec, actor=ACTOR, run_id="run-1")
    again = webhook_stream.process_pending(warehouse_url, zigpoll_spec, actor=ACTOR, run_id="run-2")

    assert (first.rows_read, first.rows_upserted, first.rows_quarantined) == (2, 1, 1)
    assert again.rows_read == 0
    with psycopg.connect(warehouse_url) as conn:
        assert (
            conn.execute("SELECT count(*) FROM ops.webhook_event WHERE processed_at IS NULL").fetchone()[0]
            == 0
        )
        assert conn.execute(
            "SELECT reason FROM ops.quarantine WHERE source = 'zigpoll' AND stream = 'responses_webhook'"
        ).fetchall() == [("missing required field metadata.moodle_user_id",)]
        watermarks = conn.execute("SELECT source, stream FROM ops.sync_watermark").fetchall()
        assert watermarks == [("zigpoll", "responses_webhook")]  # never zigpoll.responses: polling catches up
        # The record handed on is the API's response object, landed beside the webhook envelope.
        streams = conn.execute("SELECT stream, count(*) FROM raw.records GROUP BY 1 ORDER BY 1").fetchall()
        assert streams == [("responses_webhook", 2), ("webhook", 2)]
        assert conn.execute("SELECT count(*) FROM core.survey_response").fetchone()[0] == 1


def test_events_left_pending_are_reported_as_a_backlog(client, warehouse_url: str) -> None:
    _deliver(client, {"moodle_user_id": "1", "consent": "granted"})
    assert webhook_stream.backlog(warehouse_url, older_than_seconds=3600) == {}
    with psycopg.connect(warehouse_url) as conn:
        conn.execute(
            "UPDATE ops.webhook_event SET received_at = %s", (datetime.now(UTC) - timedelta(hours=2),)
        )
    with pytest.raises(webhook_stream.WebhookBacklog, match="zigpoll.responses 1"):
        webhook_stream.check_backlog(warehouse_url, older_than_seconds=3600)


def test_the_typeform_webhook_record_has_the_responses_api_shape() -> None:
    from webhook_requests import typeform_payload

    from cdp.sources.typeform import REQUIRED
    from cdp.webhooks import formats

    payload = typeform_payload("EVT-9")
    record = formats.record_of("typeform", payload)
    assert set(REQUIRED) <= set(record)
    assert record["response_id"] == payload["form_response"]["token"]
    assert "definition" not in record
