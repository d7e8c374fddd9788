"""Salesforce as the vendor's own material has it (tests/vendor_material/salesforce/, PROVENANCE.md there).

The connector reads only fields NPSP's metadata (or Salesforce's standard objects) has, or that the
preflight checks as the organisation's own; every sandbox answer has the vendor's shape; a single-currency
org reads without CurrencyIsoCode; a session that expires mid-run is renewed for reads and the CRM push.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from cdp.crm.client import SalesforceWriter
from cdp.sources import salesforce
from cdp.sources.base import AuthError, SourceSettings
from cdp.sources.salesforce.check import allocation_findings
from cdp.sources.salesforce.specs import SPECS
from cdp_sandbox.server import SandboxServer

MATERIAL = Path(__file__).resolve().parents[1] / "vendor_material" / "salesforce"
NPSP = MATERIAL / "npsp"
REST = MATERIAL / "rest"
START, END = datetime(2023, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC)  # the world fixture's span

# Standard fields of standard objects (Salesforce Object Reference; not NPSP's to define).
STANDARD = {"Id", "Name", "IsDeleted", "MasterRecordId", "CreatedDate", "LastModifiedDate", "SystemModstamp",
            "AccountId", "FirstName", "LastName", "Email", "Phone", "Birthdate", "MailingCountry",
            "HasOptedOutOfEmail", "RecordTypeId", "Type", "Amount", "CurrencyIsoCode", "CloseDate", "StageName",
            "OpportunityId", "ContactId", "Role", "IsPrimary"}  # fmt: skip
# The organisation's own custom fields: configuration, checked by `cdp sources check` (salesforce/check.py).
ORG_FIELDS = {"Financial_Transaction_Id__c", "Stripe_Charge_Id__c"}


def npsp_fields() -> set[str]:
    """Every field name NPSP's material names, with the managed namespace the REST API serves."""
    names: set[str] = set()
    for path in NPSP.glob("*.field-meta.xml"):
        sobject, field = path.name.split(".")[:2]
        prefix = "npsp__" if sobject.endswith("__c") or field.endswith("__c") else ""
        names.add(prefix + field)
    for path in NPSP.glob("*.yml"):
        for name in re.findall(r"^\s+(\w+):", path.read_text(), re.MULTILINE):
            names.add(name if name.startswith(("npe01__", "npo02__", "npsp__")) or not name.endswith("__c")
                      else "npsp__" + name)  # fmt: skip
    return names


def rest(name: str) -> Any:
    return json.loads((REST / name).read_text())


def keys_of(example: dict[str, Any]) -> set[str]:
    return set(example)


def test_every_field_we_read_is_npsp_standard_or_an_org_field_the_preflight_checks() -> None:
    known = npsp_fields() | STANDARD | ORG_FIELDS
    for sobject, fields in salesforce.OBJECT_FIELDS.items():
        unknown = [name for name in fields if name not in known]
        assert not unknown, f"{sobject}: {unknown} are in no vendor material"
    assert "npsp__Amount__c" in npsp_fields() and "npe01__Preferred_Email__c" in npsp_fields()
    assert "CDP_Person_Id__c" not in npsp_fields(), "our own field must not pass as the vendor's"


# NPSP objects whose fields must come from that object's own metadata (not just any NPSP object's).
FUND_OBJECTS = {
    "npsp__General_Accounting_Unit__c": "General_Accounting_Unit__c",
    "npsp__Allocation__c": "Allocation__c",
}


@pytest.mark.parametrize("sobject", FUND_OBJECTS)
def test_fund_streams_read_only_fields_npsp_defines_on_that_object(sobject: str) -> None:
    vendor = FUND_OBJECTS[sobject]
    assert (NPSP / f"{vendor}.object-meta.xml").exists(), "the object itself is NPSP's"
    own = {"npsp__" + path.name.split(".")[1] for path in NPSP.glob(f"{vendor}.*.field-meta.xml")}
    unknown = [name for name in salesforce.OBJECT_FIELDS[sobject] if name not in own | STANDARD]
    assert not unknown, f"{sobject}: {unknown} are not in NPSP's {vendor} metadata"


def test_only_the_fields_npsp_marks_required_are_required_of_an_allocation() -> None:
    """General_Accounting_Unit__c is the one required field of an Allocation in NPSP's metadata: a record with it
    and an amount passes; without it, or with neither amount nor percent (NPSP refuses that too), it does not."""
    required = {path.name.split(".")[1] for path in NPSP.glob("Allocation__c.*.field-meta.xml")
                if "<required>true</required>" in path.read_text()}  # fmt: skip
    assert required == {"General_Accounting_Unit__c"}
    spec = next(spec for spec in SPECS if spec.stream == "npsp__Allocation__c")
    record = {"Id": "a0E1", "npsp__General_Accounting_Unit__c": "a0F1", "npsp__Opportunity__c": "0061",
              "npsp__Amount__c": 10.5}  # fmt: skip
    assert spec.check(record) is None
    assert spec.check({**record, "npsp__Amount__c": None, "npsp__Percent__c": 33.333333}) is None
    assert "npsp__General_Accounting_Unit__c" in (
        spec.check({**record, "npsp__General_Accounting_Unit__c": None}) or ""
    )
    assert "neither" in (spec.check({**record, "npsp__Amount__c": None}) or "")
    # The Percent__c of the metadata: 9 digits, 6 of them decimals, as core.donation_allocation.percent keeps it.
    percent = (NPSP / "Allocation__c.Percent__c.field-meta.xml").read_text()
    assert "<precision>9</precision>" in percent and "<scale>6</scale>" in percent


def test_the_sandbox_serves_npsp_allocation_settings_as_its_metadata_names_them(
    sandbox: SandboxServer,
) -> None:
    fields = {
        "npsp__" + path.name.split(".")[1] for path in NPSP.glob("Allocations_Settings__c.*.field-meta.xml")
    }
    client = salesforce.SalesforceClient(sandbox.settings("salesforce"))
    served = client.field_names("npsp__Allocations_Settings__c")
    assert fields <= served
    assert [f.item for f in allocation_findings(client)] == ["default GAU allocations"]  # off in the sandbox
    org = sandbox.apis.handlers["salesforce"].org
    org.default_allocations, org.default_gau = True, "a0FNOSUCHGAU0001AAA"
    assert [(f.item, f.severity) for f in allocation_findings(client)] == [("default GAU", "missing")]
    gau = next(client.query_pages("SELECT Id, npsp__Active__c FROM npsp__General_Accounting_Unit__c"))[
        "records"
    ][0]
    org.default_gau = gau["Id"]
    assert allocation_findings(client) == []


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.stream)
def test_a_record_with_only_what_the_vendor_promises_is_not_rejected_for_currency(spec) -> None:
    """A single-currency org's record has no CurrencyIsoCode: no stream may require it."""
    fields = salesforce.OBJECT_FIELDS[spec.stream]
    record = {name: None for name in fields if name != "CurrencyIsoCode"}
    reason = spec.check(record) or ""
    assert "CurrencyIsoCode" not in reason


def test_sandbox_token_answer_and_refusal_have_the_vendors_shape(sandbox: SandboxServer) -> None:
    settings = sandbox.settings("salesforce")
    url = f"{settings.base_url}/services/oauth2/token"
    form = {"grant_type": "client_credentials", "client_id": settings.extra["client_id"]}
    good = requests.post(url, data={**form, "client_secret": settings.credential}, timeout=5)
    assert good.status_code == 200
    assert set(good.json()) == keys_of(rest("oauth2.token.client_credentials.response.json"))
    assert good.json()["token_type"] == "Bearer"
    bad = requests.post(url, data={**form, "client_secret": "wrong"}, timeout=5)
    assert bad.status_code == 400 and set(bad.json()) == keys_of(rest("oauth2.token.error.json"))
    assert bad.json()["error"] == "invalid_client"


def _get(sandbox: SandboxServer, path: str, **params: str) -> requests.Response:
    settings = sandbox.settings("salesforce")
    headers = {"Authorization": f"Bearer {settings.credential}", "Sforce-Query-Options": "batchSize=200"}
    return requests.get(f"{settings.base_url}{path}", params=params, headers=headers, timeout=10)


@pytest.mark.parametrize("resource", ["query", "queryAll"])
def test_sandbox_query_pages_have_the_vendors_shape(sandbox: SandboxServer, resource: str) -> None:
    version = sandbox.settings("salesforce").extra["api_version"]
    first = _get(sandbox, f"/services/data/{version}/{resource}", q="SELECT Id, LastName FROM Contact").json()
    example = rest("queryAll.response.json")
    assert set(first) == set(example)  # totalSize, done, nextRecordsUrl, records
    assert first["done"] is False and re.fullmatch(
        r"/services/data/v\d+\.\d/query/[\w-]+", first["nextRecordsUrl"]
    )
    assert set(first["records"][0]["attributes"]) == set(example["records"][0]["attributes"])
    last = _get(sandbox, "/services/data/" + first["nextRecordsUrl"].split("/services/data/")[1]).json()
    assert set(last) <= set(example) and {"totalSize", "done", "records"} <= set(last)


def test_sandbox_errors_have_the_vendors_shape(sandbox: SandboxServer) -> None:
    version = sandbox.settings("salesforce").extra["api_version"]
    sandbox.apis.handlers["salesforce"].org.multi_currency = False
    invalid_field = _get(
        sandbox, f"/services/data/{version}/query", q="SELECT Id, CurrencyIsoCode FROM Opportunity"
    )
    not_found = _get(sandbox, f"/services/data/{version}/sobjects/NoSuchThing__c/describe")
    expired = requests.get(
        f"{sandbox.settings('salesforce').base_url}/services/data/{version}/query",
        params={"q": "SELECT Id FROM Contact"}, headers={"Authorization": "Bearer expired"}, timeout=5,
    )  # fmt: skip
    for response, status, example in (
        (invalid_field, 400, "error.INVALID_FIELD.json"),
        (not_found, 404, "error.NOT_FOUND.json"),
        (expired, 401, "error.INVALID_SESSION_ID.json"),
    ):
        assert response.status_code == status
        body, vendor = response.json(), rest(example)
        assert isinstance(body, list) and set(body[0]) == set(vendor[0])
        assert body[0]["errorCode"] == vendor[0]["errorCode"]


def test_sandbox_describe_has_the_vendors_shape(sandbox: SandboxServer) -> None:
    version = sandbox.settings("salesforce").extra["api_version"]
    body = _get(sandbox, f"/services/data/{version}/sobjects/Opportunity/describe").json()
    example = rest("describe.Opportunity.trimmed.json")
    assert set(example) <= set(body)
    assert all(set(example["fields"][0]) <= set(field) for field in body["fields"])
    assert {"Amount", "CurrencyIsoCode", "Financial_Transaction_Id__c"} <= {f["name"] for f in body["fields"]}


def test_single_currency_org_reads_without_currency_and_takes_the_orgs(
    sandbox: SandboxServer, settings_for: Callable[..., SourceSettings]
) -> None:
    sandbox.apis.handlers["salesforce"].org.multi_currency = False
    sandbox.apis.handlers["salesforce"].org.currency = "EUR"
    stream = salesforce.streams(settings_for("salesforce"))[2]
    assert stream.name == "Opportunity"
    records = [record for page in stream.read(START, END) for record in page]
    assert records and all("CurrencyIsoCode" not in record for record in records)
    assert stream.sql_params == {"org_currency": "EUR"}
    multi = salesforce.streams(settings_for("salesforce"))[2]
    sandbox.apis.handlers["salesforce"].org.multi_currency = True
    records = [record for page in multi.read(START, END) for record in page]
    assert all(record["CurrencyIsoCode"] for record in records) and multi.sql_params == {"org_currency": ""}


def test_session_expiring_mid_read_is_renewed_and_the_read_completes(
    world, sandbox: SandboxServer, settings_for: Callable[..., SourceSettings]
) -> None:
    org = sandbox.apis.handlers["salesforce"].org
    stream = salesforce.streams(settings_for("salesforce"))[0]
    pages = stream.read(START, END)
    records = list(next(pages))
    org.expire_sessions()
    for page in pages:
        records.extend(page)
    assert len(records) == world.truth.expected_count("salesforce", "Contact", START, END)
    assert stream.client.session.renewals == 1 and org.tokens_issued == 2


def test_static_token_cannot_renew_and_a_wrong_secret_is_an_auth_error(
    sandbox: SandboxServer, settings_for: Callable[..., SourceSettings]
) -> None:
    good = settings_for("salesforce")
    wrong = SourceSettings(good.base_url, "not-the-secret", good.extra)
    with pytest.raises(AuthError, match="invalid_client"):
        next(iter(salesforce.streams(wrong)[0].read(START, END)))
    static = SourceSettings(good.base_url, "00Dexpired!token", {**good.extra, "client_id": ""})
    with pytest.raises(AuthError, match="INVALID_SESSION_ID"):
        next(iter(salesforce.streams(static)[0].read(START, END)))


def test_crm_push_renews_an_expired_session(
    sandbox: SandboxServer, settings_for: Callable[..., SourceSettings]
) -> None:
    writer = SalesforceWriter(settings_for("salesforce"))
    first = writer.upsert("Contact", "CDP_Person_Id__c", [{"CDP_Person_Id__c": "p-1", "LastName": "One"}])
    sandbox.apis.handlers["salesforce"].org.expire_sessions()
    second = writer.upsert("Contact", "CDP_Person_Id__c", [{"CDP_Person_Id__c": "p-2", "LastName": "Two"}])
    writer.close()
    assert first[0]["success"] and second[0]["success"]
    assert writer.session.renewals == 1


def test_the_kind_of_org_is_a_sandbox_setting(sandbox: SandboxServer) -> None:
    version = sandbox.settings("salesforce").extra["api_version"]
    answer = requests.post(
        f"{sandbox.base_url}/_sandbox/salesforce/org",
        json={"multi_currency": False, "currency": "EUR"},
        timeout=5,
    )
    assert answer.json()["multi_currency"] is False
    fields = {
        f["name"]
        for f in _get(sandbox, f"/services/data/{version}/sobjects/Opportunity/describe").json()["fields"]
    }
    assert "CurrencyIsoCode" not in fields and "Amount" in fields
    organization = _get(
        sandbox, f"/services/data/{version}/query", q="SELECT DefaultCurrencyIsoCode FROM Organization"
    )
    assert organization.json()["records"][0]["DefaultCurrencyIsoCode"] == "EUR"
