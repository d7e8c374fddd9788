"""SurveyMonkey's own documented examples (tests/vendor_material/surveymonkey/, see PROVENANCE.md) replayed
over HTTP through the connector, validation, the SQL and into ``core``; the setup check read against the
documented /users/me; and every sandbox answer checked against the same examples."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from cdp.sources import registry
from cdp.sources.base import AuthError, SourceSettings
from cdp.sources.surveymonkey import check
from cdp.sync.engine import sync_stream
from cdp.sync.specs import spec_for
from cdp.warehouse import Actor
from cdp_sandbox import surveymonkey as fake
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer
from tests.sources.vendor_replay import ReplayServer
from tests.sources.vendor_replay import material as vendor_material

TOKEN = "documented-example-token"
ACTOR = Actor("pytest")


def material(name: str) -> Any:
    return vendor_material("surveymonkey", name)


def envelope(data: list[Any], path: str) -> dict[str, Any]:
    """The documented pagination fields around a list (the reference's list examples all carry them)."""
    return {"per_page": 50, "total": len(data), "data": data, "page": 1,
            "links": {"self": f"https://api.surveymonkey.com/v3{path}?page=1&per_page=50"}}  # fmt: skip


class Vendor:
    """What the replay server answers: the documented examples, changeable per test."""

    def __init__(self) -> None:
        self.responses = material("responses_bulk.json")
        self.details = material("survey_details.json")
        self.contact = material("contact.json")
        self.recipient = material("recipient.json")
        self.me = material("users_me.json")
        self.ids = material("responses_list.json")
        self.requests: list[tuple[str, dict[str, str]]] = []

    def answer(self, path: str, query: dict[str, str], authorization: str) -> tuple[int, Any]:
        self.requests.append((path, query))
        if authorization.lower() != f"bearer {TOKEN}":
            error = copy.deepcopy(material("error.json"))  # the documented error object, as for code 1011
            error["error"].update(id="1011", name="Authorization Error", http_status_code=401,
                                  message="The authorization token provided was invalid.")  # fmt: skip
            return 401, error
        survey = self.responses["data"][0]["survey_id"]
        status = query.get("status", "active")
        routes = {
            "/v3/users/me": lambda: self.me,
            f"/v3/surveys/{survey}": lambda: material("survey.json"),
            f"/v3/surveys/{survey}/details": lambda: self.details,
            f"/v3/surveys/{survey}/responses/bulk": lambda: self.responses,
            f"/v3/surveys/{survey}/responses": lambda: self.ids,
            "/v3/contact_fields": lambda: material("contact_fields.json"),
            "/v3/contacts/bulk": lambda: envelope(
                [self.contact] if status == "active" else [], "/contacts/bulk"
            ),
            "/v3/contacts": lambda: envelope([self.contact] if status == "active" else [], "/contacts"),
            f"/v3/collectors/{self.responses['data'][0]['collector_id']}/recipients": lambda: envelope(
                [self.recipient], "/recipients"
            ),
        }
        if path not in routes:
            return 404, {"error": {"id": "1020", "name": "Resource Not Found", "http_status_code": 404}}
        return 200, routes[path]()


@pytest.fixture
def vendor() -> Iterator[tuple[Vendor, str]]:
    state = Vendor()
    answer = lambda path, query, headers: state.answer(path, query, headers.get("authorization", ""))  # noqa: E731
    with ReplayServer({}, fallback=answer) as server:
        yield state, f"{server.url}/v3"


def settings(base_url: str, token: str = TOKEN, **extra: Any) -> SourceSettings:
    options = {"survey_id": "105723396", "consent_field": "Custom 1", "max_attempts": 1, **extra}
    return SourceSettings(base_url, token, options)


def sync(url: str, base_url: str, stream: str, run: str = "replay") -> Any:
    spec = spec_for("surveymonkey", stream)
    connector = registry.stream("surveymonkey", stream, settings(base_url))
    return sync_stream(url, connector, spec, actor=ACTOR, run_id=run, interval_end=datetime.now(UTC))


def landed(url: str, sql: str, *params: Any) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def test_the_documented_response_lands_readable_with_nothing_quarantined(warehouse_url: str, vendor) -> None:
    state, base_url = vendor
    result = sync(warehouse_url, base_url, "responses")
    assert (result.rows_read, result.rows_quarantined) == (1, 0)
    [(record_id, survey_id, submitted_at, answers, person)] = landed(
        warehouse_url,
        "SELECT source_record_id, survey_id, submitted_at, answers, person_id FROM core.survey_response"
        " WHERE source = 'surveymonkey'",
    )
    assert (record_id, survey_id) == ("5007154325", "105723396")
    assert submitted_at == datetime(1970, 1, 17, 19, 7, 34, tzinfo=UTC)
    assert answers == {"Which monkey would you rather have as a pet?": ["Capuchin"]}
    assert person is None  # recipient_id "0": not from an email collector, so no contact to link
    bulk = [q for path, q in state.requests if path.endswith("/responses/bulk")]
    assert bulk[0]["sort_by"] == "date_modified" and bulk[0]["sort_order"] == "ASC"


def test_the_window_is_asked_by_modification_time(vendor) -> None:
    state, base_url = vendor
    stream = registry.stream("surveymonkey", "responses", settings(base_url))
    since, until = datetime(1970, 1, 17, tzinfo=UTC), datetime(1970, 1, 18, tzinfo=UTC)
    assert [r["id"] for page in stream.read(since, until) for r in page] == ["5007154325"]
    query = next(q for path, q in state.requests if path.endswith("/responses/bulk"))
    assert (query["start_modified_at"], query["end_modified_at"]) == (
        "1970-01-17T00:00:00",
        "1970-01-18T00:00:00",
    )
    assert list(stream.read(until, datetime(1970, 1, 19, tzinfo=UTC))) == []  # outside the window: not read


def test_the_documented_contact_is_held_back_when_its_field_is_no_consent_answer(
    warehouse_url: str, vendor
) -> None:
    # The documented contact's custom field 1 holds "Mr": the organisation's consent convention is not met,
    # so the contact is kept in quarantine, never read as consent; the value is kept beside the reason (issue 15).
    _, base_url = vendor
    result = sync(warehouse_url, base_url, "contacts")
    assert (result.rows_read, result.rows_quarantined) == (1, 1)
    [row] = landed(
        warehouse_url, "SELECT reason, reason_value FROM ops.quarantine WHERE source = 'surveymonkey'"
    )
    assert row == ("unknown consent answer in custom field 1 (Custom 1)", "'Mr'")


@pytest.mark.parametrize(("answer", "status", "refusal"), [("Yes", "given", "age_unknown"),
                                                           ("No", "refused", "latest_statement_refused")])  # fmt: skip
def test_the_documented_contact_and_its_recipients_response_reach_the_outreach_decision(
    warehouse_url: str, vendor, answer: str, status: str, refusal: str
) -> None:
    # The documented recipient (id 1234) and the documented contact share test@surveymonkey.com: a response
    # that names that recipient is the contact's. Only the consent answer and the recipient id are ours.
    state, base_url = vendor
    state.contact["custom_fields"]["1"] = answer
    state.responses["data"][0]["recipient_id"] = state.recipient["id"]
    sync(warehouse_url, base_url, "contacts")
    sync(warehouse_url, base_url, "responses")
    [(person, given, family, email)] = landed(
        warehouse_url,
        "SELECT p.person_id, p.given_name, p.family_name, p.email FROM core.person p"
        " JOIN core.person_source_id m USING (person_id)"
        " WHERE m.source = 'surveymonkey.contact' AND m.source_record_id = '1234'",
    )
    assert (given, family, email) == ("John", "Doe", "test@surveymonkey.com")
    [(response_person, consent_status, evidence)] = landed(
        warehouse_url,
        "SELECT r.person_id, c.status, c.evidence FROM core.survey_response r JOIN core.consent c USING (consent_id)"
        " WHERE r.source = 'surveymonkey'",
    )
    assert (response_person, consent_status) == (person, status)
    assert evidence["custom_field"] == {"id": "1", "label": "Custom 1"} and evidence["answer"] == answer
    [(latest, source, reason)] = landed(
        warehouse_url,
        "SELECT latest_status, consent_source, refusal_reason FROM mart.outreach_decision"
        " WHERE person_id = %s AND purpose = 'surveys'",
        person,
    )
    # SurveyMonkey knows no birth date: a consenting contact the LMS does not know is of unknown age, which
    # the decision never treats as an adult (the sandbox test shows a known adult's consent as eligible).
    assert (latest, source, reason) == (status, "surveymonkey", refusal)


def test_the_setup_check_reads_the_documented_scopes(vendor) -> None:
    _, base_url = vendor
    findings = check.setup_findings(settings(base_url))
    # The documented /users/me was granted neither response scope: both reads are named, nothing else.
    assert {f.item for f in findings} == {"scope responses_read_detail", "scope responses_read"}
    assert all(f.setup_step.startswith("SETUP.md") for f in findings)


def test_the_setup_check_names_a_refused_token_and_a_missing_consent_field(vendor) -> None:
    state, base_url = vendor
    [finding] = check.setup_findings(settings(base_url, token="wrong"))
    assert finding.item == "access token" and "401" in finding.problem
    state.me["scopes"]["granted"].extend(["responses_read_detail", "responses_read"])
    [finding] = check.setup_findings(settings(base_url, consent_field="Consent"))
    assert finding.item == "contact field Consent"
    assert "Custom 1" in finding.problem  # it names the fields the account has
    assert check.setup_findings(settings(base_url)) == []
    with pytest.raises(AuthError):
        list(registry.stream("surveymonkey", "responses", settings(base_url, token="wrong")).read(None, None))


# ---------------------------------------------------------------- the sandbox against the same material
def _keys(value: Any) -> set[str]:
    return set(value) if isinstance(value, dict) else set()


def test_every_sandbox_answer_has_the_documented_shape() -> None:
    world = World(seed=3, learners=60)
    with SandboxServer(world) as sandbox:
        client = registry.stream("surveymonkey", "responses", sandbox.settings("surveymonkey")).client
        bulk = client.get(f"/surveys/{fake.SURVEY_ID}/responses/bulk", {"per_page": 5})
        contacts = client.get("/contacts/bulk", {"per_page": 5})
        brief = client.get("/contacts", {"per_page": 5})
        fields = client.get("/contact_fields", {})
        recipients = client.get(f"/collectors/{fake.EMAIL_COLLECTOR}/recipients", {"per_page": 5})
        details = client.get(f"/surveys/{fake.SURVEY_ID}/details")
        survey = client.get(f"/surveys/{fake.SURVEY_ID}")
        me = client.get("/users/me")
        refused = client.http.session.get(f"{sandbox.settings('surveymonkey').base_url}/users/me",
                                          headers={"Authorization": "bearer nope"})  # fmt: skip
    documented = material("responses_bulk.json")
    for answer in (bulk, contacts, brief, fields, recipients):
        assert _keys(documented) - {"links"} <= _keys(answer) and "self" in answer["links"]
    assert bulk["data"] and _keys(documented["data"][0]) <= _keys(bulk["data"][0])
    for response in bulk["data"]:
        for page in response["pages"]:
            assert _keys(page) == _keys(documented["data"][0]["pages"][0])
            for question in page["questions"]:
                assert _keys(question) == {"id", "answers"}
                assert all(
                    _keys(a) <= {"choice_id", "row_id", "col_id", "other_id", "text"}
                    for a in question["answers"]
                )
    assert _keys(material("contact.json")) <= _keys(contacts["data"][0])
    assert set(contacts["data"][0]["custom_fields"]) == set(material("contact.json")["custom_fields"])
    assert _keys(material("contact_fields.json")["data"][0]) <= _keys(fields["data"][0])
    listed = {"id", "email", "phone_number", "href"}  # the reference's recipient list resource, by default
    assert listed <= _keys(recipients["data"][0])
    assert _keys(material("survey.json")) - {"category", "response_count"} <= _keys(survey)
    documented_details = material("survey_details.json")
    assert _keys(documented_details) <= _keys(details) | {"category"}
    assert _keys(documented_details["pages"][0]["questions"][0]) - {"answers"} <= _keys(
        details["pages"][0]["questions"][0]
    )
    assert _keys(material("users_me.json")) <= _keys(me) and _keys(me["scopes"]) == {"available", "granted"}
    assert refused.status_code == 401 and _keys(refused.json()["error"]) == _keys(
        material("error.json")["error"]
    )


def _deleted_at(url: str) -> list[tuple]:
    return landed(
        url, "SELECT source_record_id, deleted_at FROM core.survey_response WHERE source = 'surveymonkey'"
    )


def test_the_documented_id_list_is_too_short_to_judge_a_deletion(warehouse_url: str, vendor) -> None:
    # The reference's list example names id "1234" twice under "total": 2: one distinct id for two, so the
    # listing is short of what SurveyMonkey reports and nothing can be judged deleted from it.
    state, base_url = vendor
    sync(warehouse_url, base_url, "responses")
    sync(warehouse_url, base_url, "responses", run="replay-2")
    assert [path for path, _ in state.requests if path.endswith("/responses")]
    assert _deleted_at(warehouse_url) == [("5007154325", None)]


def test_a_response_no_longer_listed_is_an_audited_soft_delete_and_comes_back(
    warehouse_url: str, vendor
) -> None:
    state, base_url = vendor
    sync(warehouse_url, base_url, "responses")
    # The documented list, naming other responses of the survey than the documented bulk one: deleted in the tool.
    state.ids["data"][1]["id"] = "1235"
    sync(warehouse_url, base_url, "responses", run="replay-2")
    [(record_id, deleted_at)] = _deleted_at(warehouse_url)
    assert record_id == "5007154325" and deleted_at is not None
    [(audited,)] = landed(
        warehouse_url,
        "SELECT count(*) FROM audit.audit_events e, jsonb_array_elements(e.after) AS row"
        " WHERE e.entity_type = 'core.survey_response' AND e.action = 'update' AND row ->> 'deleted_at' IS NOT NULL",
    )
    assert audited == 1
    state.ids["data"][1]["id"] = "5007154325"  # listed again (restored): no longer deleted
    sync(warehouse_url, base_url, "responses", run="replay-3")
    assert _deleted_at(warehouse_url) == [("5007154325", None)]
