"""The sandbox server speaks each vendor's shapes: errors, limits, Slack, admin faults, Stripe objects."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from cdp_sandbox.faults import Fault
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer, add_arguments

FIXTURES = Path(__file__).resolve().parents[1] / "sources" / "data" / "stripe_fixtures.json"


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=2, learners=600)


@pytest.fixture
def sandbox(world: World) -> Iterator[SandboxServer]:
    with SandboxServer(world) as server:
        yield server


#: Keys Stripe gives only in some states, so its example (a succeeded refund) lacks them: a failed refund's
#: failure_reason and failure_balance_transaction ("Provided if the refund has a status of failed",
#: https://docs.stripe.com/api/refunds/object; both in the schema of tests/vendor_material/stripe/).
STATE_KEYS = {"failure_reason", "failure_balance_transaction"}


def same_shape(ours: Any, theirs: Any, path: str = "") -> list[str]:
    """Keys Stripe's example has that ours lacks, and values of another JSON type (None matches anything)."""
    problems = []
    if isinstance(theirs, dict):
        if not isinstance(ours, dict):
            return [f"{path}: expected object"]
        for key, value in theirs.items():
            if key not in ours:
                problems.append(f"{path}.{key}: missing")
            elif key != "metadata":  # metadata is the merchant's own free-form map
                problems.extend(same_shape(ours[key], value, f"{path}.{key}"))
        stated = STATE_KEYS if ours.get("status") == "failed" else set()
        problems.extend(
            f"{path}.{key}: not in Stripe's example"
            for key in ours
            if key not in theirs and key not in stated
        )
    elif theirs is not None and ours is not None and type(ours) is not type(theirs):
        problems.append(f"{path}: {type(ours).__name__} instead of {type(theirs).__name__}")
    return problems


@pytest.mark.parametrize(
    ("resource", "fixture"),
    [("charges", "charge"), ("refunds", "refund"), ("balance_transactions", "balance_transaction")],
)
def test_stripe_objects_have_stripes_keys_and_types(
    sandbox: SandboxServer, resource: str, fixture: str
) -> None:
    example = json.loads(FIXTURES.read_text())[fixture]
    response = requests.get(
        f"{sandbox.url('stripe')}/v1/{resource}",
        params={"limit": 20},
        headers={"Authorization": f"Bearer {sandbox.world.credentials.stripe}"},
        timeout=5,
    )
    body = response.json()
    assert response.status_code == 200
    assert set(body) == {"object", "data", "has_more", "url"} and body["object"] == "list"
    assert body["url"] == f"/v1/{resource}" and body["has_more"] is True
    malformed = set(sandbox.world.truth.malformed("stripe", resource))
    for item in body["data"]:
        if item["id"] not in malformed:
            assert same_shape(item, example) == []


def test_stripe_bad_key_gets_stripes_401(sandbox: SandboxServer) -> None:
    response = requests.get(
        f"{sandbox.url('stripe')}/v1/charges", headers={"Authorization": "Bearer sk_test_nope"}, timeout=5
    )
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "Invalid API Key" in response.json()["error"]["message"]


def test_moodle_errors_are_http_200_exceptions(sandbox: SandboxServer) -> None:
    url = f"{sandbox.url('moodle')}/webservice/rest/server.php"
    bad = requests.post(
        url,
        data={"wstoken": "nope", "wsfunction": "core_webservice_get_site_info", "moodlewsrestformat": "json"},
        timeout=5,
    )
    assert bad.status_code == 200
    assert bad.json() == {
        "exception": "moodle_exception",
        "errorcode": "invalidtoken",
        "message": "Invalid token - token not found",
    }
    unknown = requests.post(
        url,
        data={
            "wstoken": sandbox.world.credentials.moodle,
            "wsfunction": "core_nope",
            "moodlewsrestformat": "json",
        },
        timeout=5,
    )
    assert unknown.json()["errorcode"] == "invalidrecord"


def test_moodle_core_functions(sandbox: SandboxServer) -> None:
    url = f"{sandbox.url('moodle')}/webservice/rest/server.php"
    base = {"wstoken": sandbox.world.credentials.moodle, "moodlewsrestformat": "json"}
    info = requests.post(url, data={**base, "wsfunction": "core_webservice_get_site_info"}, timeout=5).json()
    assert "local_cdp_get_users" in {f["name"] for f in info["functions"]}
    users = requests.post(
        url,
        data={
            **base,
            "wsfunction": "core_user_get_users_by_field",
            "field": "id",
            "values[0]": 3,
            "values[1]": 4,
        },
        timeout=5,
    ).json()
    assert [u["id"] for u in users] == [3, 4]
    enrolled = requests.post(
        url,
        data={
            **base,
            "wsfunction": "core_enrol_get_enrolled_users",
            "courseid": 2,
            "options[0][name]": "limitnumber",
            "options[0][value]": 5,
        },
        timeout=5,
    ).json()
    assert 0 < len(enrolled) <= 5
    courses = requests.post(url, data={**base, "wsfunction": "core_course_get_courses"}, timeout=5).json()
    assert len(courses) == len(sandbox.world.table("moodle", "courses"))


def test_salesforce_errors_limits_and_counts(sandbox: SandboxServer) -> None:
    root = f"{sandbox.url('salesforce')}/services/data/v60.0"
    auth = {"Authorization": f"Bearer {sandbox.world.credentials.salesforce}"}
    expired = requests.get(f"{root}/limits", headers={"Authorization": "Bearer old"}, timeout=5)
    assert expired.status_code == 401 and expired.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]
    limits = requests.get(f"{root}/limits", headers=auth, timeout=5).json()
    assert limits["DailyApiRequests"]["Max"] > limits["DailyApiRequests"]["Remaining"] > 0
    bad_field = requests.get(
        f"{root}/query", params={"q": "SELECT Id, Nope__c FROM Contact"}, headers=auth, timeout=5
    )
    assert bad_field.status_code == 400 and bad_field.json()[0]["errorCode"] == "INVALID_FIELD"
    soql = "SELECT COUNT() FROM Contact WHERE SystemModstamp >= 2023-06-01T00:00:00Z"
    counted = requests.get(f"{root}/query", params={"q": soql}, headers=auth, timeout=5)
    assert counted.headers["Sforce-Limit-Info"].startswith("api-usage=")
    assert counted.json()["totalSize"] == sandbox.world.truth.expected_count(
        "salesforce", "Contact", 1685577600, None
    )


def test_slack_webhook_receiver_keeps_messages(sandbox: SandboxServer) -> None:
    posted = requests.post(sandbox.slack_webhook_url, json={"text": "sync failed: stripe.charges"}, timeout=5)
    assert posted.status_code == 200 and posted.text == "ok"
    assert requests.post(sandbox.slack_webhook_url, json={}, timeout=5).status_code == 400
    messages = requests.get(f"{sandbox.base_url}/_sandbox/slack", timeout=5).json()["messages"]
    assert [m["payload"]["text"] for m in messages] == ["sync failed: stripe.charges"]
    assert sandbox.slack_messages[0]["payload"]["text"] == "sync failed: stripe.charges"


def test_faults_can_be_set_and_cleared_over_http(sandbox: SandboxServer) -> None:
    admin = f"{sandbox.base_url}/_sandbox/faults"
    created = requests.post(
        admin, json={"kind": "rate_limit", "source": "stripe", "retry_after": 7}, timeout=5
    )
    assert created.status_code == 201
    limited = requests.get(
        f"{sandbox.url('stripe')}/v1/charges",
        headers={"Authorization": f"Bearer {sandbox.world.credentials.stripe}"},
        timeout=5,
    )
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert limited.json()["error"]["code"] == "rate_limit"
    assert requests.post(admin, json={"kind": "nonsense", "source": "x"}, timeout=5).status_code == 400
    requests.delete(admin, timeout=5)
    assert requests.get(admin, timeout=5).json() == {"faults": []}


def test_fault_specs_parse_from_the_command_line() -> None:
    fault = Fault.parse("moodle:enrollments:drop_records:count=1500,since=1685577600,until=1685664000")
    assert (fault.source, fault.stream, fault.kind, fault.count, fault.since) == (
        "moodle",
        "enrollments",
        "drop_records",
        1500,
        1685577600,
    )
    assert Fault.parse("stripe:rate_limit").stream is None
    with pytest.raises(ValueError):
        Fault.parse("stripe:charges:explode")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--port", "0", "--seed", "3", "--fault", "stripe:charges:server_error:times=2"])
    assert args.seed == 3 and args.fault == ["stripe:charges:server_error:times=2"]


def test_truth_count_endpoint_matches_the_generator(sandbox: SandboxServer) -> None:
    body = requests.get(
        f"{sandbox.base_url}/_sandbox/truth/count",
        params={"source": "stripe", "stream": "charges", "since": "2023-06-01T00:00:00Z"},
        timeout=5,
    ).json()
    assert body["count"] == sandbox.world.truth.expected_count("stripe", "charges", 1685577600)
