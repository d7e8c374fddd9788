"""``setup_findings`` of ReferralHero, Zigpoll, Galaxy, Typeform and Zendesk (``cdp sources check``): a vendor
side that has what we read gives no finding; each missing piece gives one finding naming its SETUP.md step."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from cdp.sources.base import SourceSettings
from cdp.sources.galaxy import check as galaxy_check
from cdp.sources.referralhero import check as referralhero_check
from cdp.sources.typeform import check as typeform_check
from cdp.sources.zendesk import check as zendesk_check
from cdp.sources.zigpoll import check as zigpoll_check
from tests.sources.vendor_replay import ReplayServer, material


def items(findings: list[Any]) -> dict[str, str]:
    return {f.item: f.severity for f in findings}


# ---------------------------------------------------------------- ReferralHero
def referralhero_vendor(token: str = "token") -> dict[str, Any]:
    envelope = dict(material("referralhero", "objects.json")["lists_retrieved_envelope"])
    envelope["data"] = {
        "response": "subscribers_retrieved",
        "subscribers": [],
        "pagination": {"total_pages": 1, "current_page": 1, "per_page": 50, "total_objects": 0},
    }

    def subscribers(query: dict[str, str], headers: dict[str, str]) -> tuple[int, Any]:
        if headers.get("authorization") != f"Bearer {token}":
            return 401, {"status": "error", "code": "unauthorized"}
        return 200, envelope

    return {"/api/v2/lists/MFxxxxxxxxx/subscribers": subscribers}


@pytest.mark.parametrize(
    ("list_uuid", "credential", "expected"),
    [
        ("MFxxxxxxxxx", "token", {}),
        ("MFnothere000", "token", {"list MFnothere000": "missing"}),
        ("MFxxxxxxxxx", "wrong", {"credential": "missing"}),
        ("", "token", {"extra.list_uuid": "missing"}),
    ],
)
def test_referralhero_setup(list_uuid: str, credential: str, expected: dict[str, str]) -> None:
    with ReplayServer(referralhero_vendor()) as vendor:
        found = referralhero_check.setup_findings(
            SourceSettings(vendor.url, credential, {"list_uuid": list_uuid})
        )
    assert items(found) == expected
    assert all(f.setup_step.startswith("SETUP.md") for f in found)


# ---------------------------------------------------------------- Galaxy
def test_galaxy_setup_logs_in_and_takes_an_empty_listing_as_fine() -> None:
    examples = material("galaxy", "examples.json")

    def listing(query: dict[str, str], headers: dict[str, str]) -> tuple[int, Any]:
        if headers.get("authorization") != "Bearer example-session-token":
            return 401, {"error": "Unauthenticated."}
        return 404, {"error": "No results found."}

    routes = {"/users/login": examples["login"], "/users": listing, "/responses": listing, "/hours": listing}
    with ReplayServer(routes) as vendor:
        assert galaxy_check.setup_findings(SourceSettings(vendor.url, "key", {})) == []
        vendor.routes["/users/login"] = lambda q, h: (401, {"error": "Unauthenticated."})
        assert items(galaxy_check.setup_findings(SourceSettings(vendor.url, "key", {}))) == {
            "credential": "missing"
        }


# ---------------------------------------------------------------- Zigpoll
def zigpoll_vendor(emails: list[dict], responses: list[dict]) -> dict[str, Any]:
    page = lambda data: {"data": data, "hasNextPage": False, "endCursor": None}  # noqa: E731
    return {
        "/account": {"_id": "acc"},
        "/poll": {"_id": "poll"},
        "/emails": page(emails),
        "/responses": page(responses),
    }


def test_zigpoll_setup_reports_missing_emails_and_moodle_ids() -> None:
    examples = material("zigpoll", "responses_examples.json")["data"]
    settings = {"account_id": "acc", "poll_id": "poll"}
    email = {"_id": "e1", "email": "a@example.org", "participantId": "p1"}
    with ReplayServer(zigpoll_vendor([], examples)) as vendor:
        found = items(zigpoll_check.setup_findings(SourceSettings(vendor.url, "key", settings)))
    assert found == {"/emails": "warning", "response metadata.moodle_user_id": "warning"}
    tagged = [{**r, "metadata": {"moodle_user_id": "17"}} for r in examples]
    with ReplayServer(zigpoll_vendor([email], tagged)) as vendor:
        assert zigpoll_check.setup_findings(SourceSettings(vendor.url, "key", settings)) == []


# ---------------------------------------------------------------- Typeform
FORM = {
    "id": "abc123",
    "title": "Course feedback",
    "hidden": ["learner_id"],
    "fields": [
        {"id": "f1", "ref": "email", "type": "email"},
        {"id": "f2", "ref": "age", "type": "number"},
        {"id": "f3", "ref": "may_contact", "type": "yes_no"},
    ],
}


def typeform_vendor(form: dict[str, Any], token: str = "tok") -> dict[str, Any]:
    def answer(body: Any) -> Any:
        return lambda q, h: (
            (200, body)
            if h.get("authorization") == f"Bearer {token}"
            else (
                401,
                {"code": "AUTHENTICATION_FAILED", "description": "Authentication credentials not found"},
            )
        )

    return {"/forms/abc123": answer(form), "/forms/abc123/responses": answer({"total_items": 0, "items": []})}


def test_typeform_setup_checks_hidden_fields_and_refs() -> None:
    with ReplayServer(typeform_vendor(FORM)) as vendor:
        assert typeform_check.setup_findings(SourceSettings(vendor.url, "tok", {"form_id": "abc123"})) == []
    bare = {**FORM, "hidden": ["utm_source"], "fields": FORM["fields"][:1]}
    with ReplayServer(typeform_vendor(bare)) as vendor:
        found = items(typeform_check.setup_findings(SourceSettings(vendor.url, "tok", {"form_id": "abc123"})))
    assert found == {
        "hidden field learner_id": "missing",
        "question ref age": "missing",
        "question ref may_contact": "missing",
    }


def test_typeform_setup_says_when_the_token_belongs_to_the_other_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with ReplayServer(typeform_vendor(FORM, token="nobody")) as us, ReplayServer(typeform_vendor(FORM)) as eu:
        monkeypatch.setattr(typeform_check, "HOSTS", {us.url: eu.url, eu.url: us.url})
        found = typeform_check.setup_findings(SourceSettings(us.url, "tok", {"form_id": "abc123"}))
    assert [(f.item, f.setup_step) for f in found] == [("host", f"SETUP.md step 1: set host to {eu.url}")]


# ---------------------------------------------------------------- Zendesk
def zendesk_vendor(role: str, field_id: int) -> dict[str, Any]:
    expected = "Basic " + base64.b64encode(b"agent@example.org/token:tok").decode()

    def guarded(body: Any) -> Any:
        return lambda q, h: (
            (200, body)
            if h.get("authorization") == expected
            else (401, {"error": "Couldn't authenticate you"})
        )

    return {
        "/api/v2/users/me.json": guarded({"user": {"id": 1, "role": role}}),
        f"/api/v2/ticket_fields/{field_id}.json": guarded(
            {"ticket_field": {"id": field_id, "type": "text", "title": "Referral", "active": True}}
        ),
    }


@pytest.mark.parametrize(
    ("role", "field_on_account", "configured", "expected"),
    [
        ("admin", 360, 360, {}),
        ("admin", 360, 999, {"ticket field 999": "missing"}),
        ("agent", 360, 360, {"agent role": "missing"}),
        ("admin", 360, None, {"extra.referral_field_id": "warning"}),
    ],
)
def test_zendesk_setup_checks_the_referral_field(
    role: str, field_on_account: int, configured: int | None, expected: dict[str, str]
) -> None:
    extra = {"email": "agent@example.org", "referral_field_id": configured}
    with ReplayServer(zendesk_vendor(role, field_on_account)) as vendor:
        assert items(zendesk_check.setup_findings(SourceSettings(vendor.url, "tok", extra))) == expected
        assert items(zendesk_check.setup_findings(SourceSettings(vendor.url, "bad", extra))) == {
            "credential": "missing"
        }
