"""Typeform's own examples (tests/vendor_material/typeform/, see PROVENANCE.md) replayed through connector →
validation → SQL → core: the Responses API example over HTTP through the real connector, the webhook example
through the webhook formats. Only the hidden field our form defines (SETUP.md, ``learner_id``) is ours."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from cdp.sources import typeform
from cdp.sources.base import ContractError, SourceSettings
from cdp.sync.engine import sync_stream
from cdp.sync.specs import spec_for
from cdp.warehouse import Actor
from cdp.webhooks import formats
from tests.sources.vendor_replay import ReplayServer, material

ACTOR = Actor("pytest")
END = datetime(2030, 1, 1, tzinfo=UTC)
FORM = "lR6F4j"  # the form of the documented example (metadata.referer …/to/lR6F4j)
LEARNER = "4242"  # the Moodle user our form's hidden field names (ours)


def add_learner(url: str, moodle_id: str = LEARNER) -> str:
    person = str(uuid.uuid4())
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO core.person (person_id, given_name, family_name, email, email_normalized, jurisdiction,"
            " is_learner) VALUES (%s, 'Lian', 'Doe', 'lian1078@other.com', 'lian1078@other.com', 'US', true)",
            (person,),
        )
        conn.execute(
            "INSERT INTO core.person_source_id (source, source_record_id, person_id) VALUES ('moodle.user', %s, %s)",
            (moodle_id, person),
        )
    return person


def documented_page(hidden: dict[str, str] | None = None) -> dict[str, Any]:
    page = copy.deepcopy(material("typeform", "responses_explanation.json"))
    if hidden is not None:
        for item in page["items"]:
            item["hidden"] = hidden
    return page


def rows(url: str, sql: str, *args: Any) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, args).fetchall()


@pytest.fixture
def vendor() -> Iterator[ReplayServer]:
    page = {"body": documented_page({"learner_id": LEARNER})}
    with ReplayServer({f"/forms/{FORM}/responses": lambda query, headers: (200, page["body"])}) as server:
        server.page = page  # type: ignore[attr-defined]
        yield server


def stream(url: str) -> typeform.TypeformResponsesStream:
    return typeform.TypeformResponsesStream(
        SourceSettings(url, "tfp_token", {"form_id": FORM, "max_attempts": 1, "retry_base_delay": 0.0})
    )


def test_the_documented_response_lands_in_core_with_nothing_quarantined(
    warehouse_url: str, vendor: ReplayServer
) -> None:
    person = add_learner(warehouse_url)
    result = sync_stream(
        warehouse_url, stream(vendor.url), spec_for("typeform", "responses"),
        actor=ACTOR, run_id="tf-docs", interval_end=END,
    )  # fmt: skip
    assert (result.rows_read, result.rows_quarantined) == (1, 0)
    [(record_id, survey, submitted, answers, landed_person, age)] = rows(
        warehouse_url,
        "SELECT source_record_id, survey_id, submitted_at, answers, person_id::text, age_reported"
        " FROM core.survey_response WHERE source = 'typeform'",
    )
    # No response_id in the documented item: the token is the response's id.
    assert record_id == "21085286190ffad1248d17c4135ee56f"
    assert survey == FORM, "the survey is read from the referer of the documented metadata"
    assert submitted == datetime(2017, 9, 14, 22, 38, 22, tzinfo=UTC)
    assert answers["my_custom_email_reference"] == "lian1078@other.com"
    assert answers["my_custom_rating_reference"] == 3 and answers["my_custom_yes_no_reference"] is False
    assert (landed_person, age) == (person, None), "no age question in the example: no age invented"
    request = vendor.requests[0]
    assert request[3]["authorization"] == "Bearer tfp_token"
    assert request[2]["sort"] == "submitted_at,asc" and request[2]["page_size"] == "1000"
    assert rows(warehouse_url, "SELECT count(*) FROM ops.quarantine WHERE source = 'typeform'") == [(0,)]


def test_a_documented_response_without_our_hidden_field_is_kept_with_its_reason(
    warehouse_url: str, vendor: ReplayServer
) -> None:
    # Verbatim (no hidden object at all): the learner is unknown, the response kept in quarantine, not lost.
    vendor.page["body"] = documented_page()  # type: ignore[attr-defined]
    result = sync_stream(
        warehouse_url, stream(vendor.url), spec_for("typeform", "responses"),
        actor=ACTOR, run_id="tf-docs", interval_end=END,
    )  # fmt: skip
    assert (result.rows_read, result.rows_quarantined) == (1, 1)
    [(reason,)] = rows(warehouse_url, "SELECT reason FROM ops.quarantine WHERE source = 'typeform'")
    assert "hidden.learner_id" in reason


def test_the_connector_requires_only_what_every_documented_example_shows() -> None:
    documented = [
        *material("typeform", "responses_explanation.json")["items"],
        material("typeform", "webhook_example.json")["form_response"],
    ]
    for name in typeform.REQUIRED:
        assert all(name in response for response in documented), name
    page = documented_page()
    del page["items"][0]["token"]  # a response without its id is a broken contract, said on the first page
    with (
        ReplayServer({f"/forms/{FORM}/responses": page}) as server,
        pytest.raises(ContractError, match="token"),
    ):
        list(stream(server.url).read(None, END))


def test_the_documented_webhook_delivery_lands_as_the_same_kind_of_response(warehouse_url: str) -> None:
    payload = material("typeform", "webhook_example.json")
    event = formats.event_of("typeform", payload)
    assert (event.event_id, event.form_id, event.record_id) == (
        "LtWXD3crgy", "lT4Z3j", "a3a12ec67a1365927098a606107fac15",
    )  # fmt: skip
    payload["form_response"]["hidden"] = {"learner_id": LEARNER}  # our form's hidden field, not user_id
    record = formats.record_of("typeform", payload)
    assert "definition" not in record and record["response_id"] == record["token"]
    add_learner(warehouse_url)

    class Delivered:
        source, name, primary_key, cursor_field = "typeform", "responses", "response_id", "submitted_at"
        required_fields = typeform.REQUIRED

        def read(self, since: datetime | None, until: datetime | None) -> Iterator[list[dict]]:
            yield [record]

    result = sync_stream(
        warehouse_url, Delivered(), spec_for("typeform", "responses"), actor=ACTOR, run_id="tf-hook",
        interval_end=END,
    )  # fmt: skip
    assert (result.rows_read, result.rows_quarantined) == (1, 0)
    [(survey, answers)] = rows(
        warehouse_url, "SELECT survey_id, answers FROM core.survey_response WHERE source = 'typeform'"
    )
    assert (survey, answers) == ("lT4Z3j", {}), (
        "the delivery names its form; the trimmed example has no answers"
    )
