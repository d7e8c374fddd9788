"""The sandbox's Salesforce write API and certificate service answer as their documentation says."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from cdp_sandbox.crm_writes import COMPLETION_CAMPAIGN_ID, INTEGRATION_USER_ID, STAFF_USER_ID
from cdp_sandbox.faults import Fault
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(World(seed=1, learners=20)) as server:
        yield server


@pytest.fixture
def sf(sandbox: SandboxServer):
    base = f"{sandbox.base_url}/salesforce/services/data/v60.0"
    headers = {"Authorization": f"Bearer {sandbox.world.credentials.salesforce}"}

    def call(method: str, path: str, body=None, auth: bool = True) -> requests.Response:
        return requests.request(method, base + path, json=body, headers=headers if auth else {}, timeout=5)

    return call


def test_single_record_upsert_by_external_id_creates_then_updates(sf) -> None:
    created = sf(
        "PATCH", "/sobjects/Contact/CDP_Person_Id__c/p-1", {"LastName": "Ng", "Email": "ng@example.org"}
    )
    updated = sf("PATCH", "/sobjects/Contact/CDP_Person_Id__c/p-1", {"FirstName": "Mai"})
    record = sf("GET", "/sobjects/Contact/CDP_Person_Id__c/p-1").json()

    assert created.status_code == 201 and created.json()["created"] is True
    assert updated.status_code == 200 and updated.json() == {
        "id": created.json()["id"], "success": True, "errors": [], "created": False
    }  # fmt: skip
    assert (record["FirstName"], record["LastName"], record["LastModifiedById"]) == (
        "Mai",
        "Ng",
        INTEGRATION_USER_ID,
    )
    assert record["LastModifiedDate"] > record["CreatedDate"]
    refused = sf("PATCH", "/sobjects/Contact/CDP_Person_Id__c/p-2", {"Email": "not-an-email"})
    assert refused.status_code == 400
    assert {e["errorCode"] for e in refused.json()} == {"INVALID_EMAIL_ADDRESS", "REQUIRED_FIELD_MISSING"}


def test_collection_upsert_answers_per_record_and_honours_its_limits(sf, sandbox: SandboxServer) -> None:
    records = [
        {"attributes": {"type": "Contact"}, "CDP_Person_Id__c": "c-1", "LastName": "Okafor"},
        {"attributes": {"type": "Contact"}, "CDP_Person_Id__c": "c-2", "LastName": "x" * 81},
        {"attributes": {"type": "Contact"}, "CDP_Person_Id__c": "c-3", "LastName": "Ortiz", "Shoe__c": 1},
    ]
    answer = sf(
        "PATCH", "/composite/sobjects/Contact/CDP_Person_Id__c", {"allOrNone": False, "records": records}
    )

    assert answer.status_code == 200
    results = answer.json()
    assert [r["success"] for r in results] == [True, False, False]
    assert [r["errors"][0]["statusCode"] for r in results[1:]] == ["STRING_TOO_LONG", "INVALID_FIELD"]
    too_many = [
        {"attributes": {"type": "Contact"}, "CDP_Person_Id__c": f"m-{i}", "LastName": "M"} for i in range(201)
    ]
    assert (
        sf("PATCH", "/composite/sobjects/Contact/CDP_Person_Id__c", {"records": too_many}).status_code == 400
    )
    assert sf("PATCH", "/composite/sobjects/Contact/Email", {"records": records}).status_code == 404
    assert (
        sf(
            "PATCH", "/composite/sobjects/Contact/CDP_Person_Id__c", {"records": records}, auth=False
        ).status_code
        == 401
    )
    found = sf("POST", "/composite/sobjects/Contact", {"ids": [results[0]["id"], "003SB9999999999999"],
                                                       "fields": ["LastName"]}).json()  # fmt: skip
    assert found[0]["LastName"] == "Okafor" and found[1] is None
    assert "c-2" not in sandbox.apis.salesforce_writes.by_external_id("Contact", "CDP_Person_Id__c")


def test_campaign_members_are_unique_per_contact_and_a_staff_edit_is_marked(
    sf, sandbox: SandboxServer
) -> None:
    sf("PATCH", "/sobjects/Contact/CDP_Person_Id__c/k-1", {"LastName": "Kim"})
    member = {"attributes": {"type": "CampaignMember"}, "CampaignId": COMPLETION_CAMPAIGN_ID,
              "Contact": {"CDP_Person_Id__c": "k-1"}, "Status": "Sent"}  # fmt: skip
    path = "/composite/sobjects/CampaignMember/CDP_Trigger_Key__c"
    first = sf("PATCH", path, {"records": [{**member, "CDP_Trigger_Key__c": "t-1"}]}).json()[0]
    replay = sf("PATCH", path, {"records": [{**member, "CDP_Trigger_Key__c": "t-1"}]}).json()[0]
    other_key = sf("PATCH", path, {"records": [{**member, "CDP_Trigger_Key__c": "t-2"}]}).json()[0]
    unknown = sf("PATCH", path, {"records": [{**member, "CDP_Trigger_Key__c": "t-3",
                                              "Contact": {"CDP_Person_Id__c": "nobody"}}]}).json()[0]  # fmt: skip

    assert first["created"] is True and replay == {**first, "created": False}
    assert other_key["errors"][0]["statusCode"] == "DUPLICATE_VALUE"
    assert unknown["errors"][0]["statusCode"] == "INVALID_FIELD"
    edited = requests.post(
        f"{sandbox.base_url}/_sandbox/salesforce/staff-edit",
        json={"sobject": "Contact", "external_id_field": "CDP_Person_Id__c", "external_id": "k-1",
              "fields": {"Phone": "+15550001111"}},
        timeout=5,
    ).json()  # fmt: skip
    assert (edited["Phone"], edited["LastModifiedById"]) == ("+15550001111", STAFF_USER_ID)


def test_the_certificate_service_never_issues_twice_for_one_key(sandbox: SandboxServer) -> None:
    url = f"{sandbox.base_url}/certificates/v1/certificate-requests"
    auth = {"Authorization": f"Bearer {sandbox.world.credentials.certificates}"}
    body = {
        "recipient": {"reference": "p", "name": "A B"},
        "course": {"reference": "c"},
        "completed_on": "2024-01-02",
    }

    first = requests.post(url, json=body, headers={**auth, "Idempotency-Key": "k1"}, timeout=5)
    again = requests.post(url, json=body, headers={**auth, "Idempotency-Key": "k1"}, timeout=5)
    changed = requests.post(url, json={**body, "completed_on": "2024-01-03"}, headers={**auth, "Idempotency-Key": "k1"},
                            timeout=5)  # fmt: skip
    keyless = requests.post(url, json=body, headers=auth, timeout=5)
    nameless = requests.post(url, json={**body, "recipient": {"reference": "p"}},
                             headers={**auth, "Idempotency-Key": "k2"}, timeout=5)  # fmt: skip

    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert changed.status_code == 422 and changed.json()["error"]["type"] == "idempotency_error"
    assert keyless.status_code == 400 and nameless.status_code == 400
    assert requests.post(url, json=body, headers={"Idempotency-Key": "k9"}, timeout=5).status_code == 401
    fault = sandbox.faults.add(Fault("lose_response", "certificates", "requests", times=1))
    lost = requests.post(url, json=body, headers={**auth, "Idempotency-Key": "k3"}, timeout=5)
    sandbox.faults.remove(fault.id)
    assert lost.status_code == 502
    assert (
        sum(1 for r in sandbox.apis.certificate_service.requests.values() if r["idempotency_key"] == "k3")
        == 1
    )
