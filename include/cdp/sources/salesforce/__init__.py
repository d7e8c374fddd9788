"""Salesforce (Nonprofit Success Pack) connector over the REST API query resource.

Vendor docs followed: REST API Developer Guide, "Execute a SOQL Query" (``GET
/services/data/vXX.X/query?q=``, ``nextRecordsUrl`` until ``done``), "Query Options Header"
(``Sforce-Query-Options: batchSize``), "Status Codes and Error Responses" (a JSON list of
``{"message", "errorCode"}``; 401 ``INVALID_SESSION_ID``; 403 ``REQUEST_LIMIT_EXCEEDED``), the
``/limits`` resource; NPSP object and field names from SalesforceFoundation/NPSP
``force-app/main/default/objects``. Incremental reads filter on ``SystemModstamp`` (which also moves
on system changes, unlike LastModifiedDate) with ``>= since AND < until`` and order by it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import requests

from cdp.sources.base import (
    AuthError,
    ContractError,
    RateLimitExhausted,
    SourceSettings,
    Stream,
    check_contract,
    iso_utc,
)
from cdp.sources.http import HttpClient

SOURCE = "salesforce"
DEFAULT_API_VERSION = "v60.0"

OBJECT_FIELDS: dict[str, tuple[str, ...]] = {
    "Contact": (
        "Id",
        "AccountId",
        "FirstName",
        "LastName",
        "Email",
        "npe01__HomeEmail__c",
        "npe01__Preferred_Email__c",
        "Phone",
        "Birthdate",
        "MailingCountry",
        "HasOptedOutOfEmail",
        "IsDeleted",
        "CreatedDate",
        "LastModifiedDate",
        "SystemModstamp",
    ),
    "Account": (
        "Id",
        "Name",
        "RecordTypeId",
        "npe01__SYSTEM_AccountType__c",
        "Type",
        "IsDeleted",
        "CreatedDate",
        "LastModifiedDate",
        "SystemModstamp",
    ),
    "Opportunity": (
        "Id",
        "Name",
        "AccountId",
        "npsp__Primary_Contact__c",
        "Amount",
        "CurrencyIsoCode",
        "CloseDate",
        "StageName",
        "Financial_Transaction_Id__c",
        "Stripe_Charge_Id__c",
        "IsDeleted",
        "CreatedDate",
        "LastModifiedDate",
        "SystemModstamp",
    ),
    "npsp__Partial_Soft_Credit__c": (
        "Id",
        "Name",
        "npsp__Opportunity__c",
        "npsp__Contact__c",
        "npsp__Amount__c",
        "npsp__Role_Name__c",
        "CurrencyIsoCode",
        "IsDeleted",
        "CreatedDate",
        "LastModifiedDate",
        "SystemModstamp",
    ),
    "OpportunityContactRole": (
        "Id",
        "OpportunityId",
        "ContactId",
        "Role",
        "IsPrimary",
        "IsDeleted",
        "CreatedDate",
        "LastModifiedDate",
        "SystemModstamp",
    ),
}


def _classify(response: requests.Response) -> Exception | None:
    if response.status_code < 400:
        return None
    try:
        errors = response.json()
        code = errors[0].get("errorCode", "") if isinstance(errors, list) and errors else ""
    except ValueError:
        code = ""
    if response.status_code == 401 or code == "INVALID_SESSION_ID":
        return AuthError("salesforce: session expired or invalid (INVALID_SESSION_ID)")
    if response.status_code == 403 and code == "REQUEST_LIMIT_EXCEEDED":
        return RateLimitExhausted("salesforce: org API request limit exceeded (REQUEST_LIMIT_EXCEEDED)")
    if response.status_code == 400:
        return ContractError(f"salesforce: query rejected ({code})")
    return None


class SalesforceClient:
    def __init__(self, settings: SourceSettings) -> None:
        self.version = str(settings.extra.get("api_version", DEFAULT_API_VERSION))
        self.batch_size = int(settings.extra.get("batch_size", 2000))
        self.http = HttpClient(
            SOURCE, settings, classify=_classify, headers={"Authorization": f"Bearer {settings.credential}"}
        )

    def query_pages(self, soql: str) -> Iterator[dict[str, Any]]:
        headers = {"Sforce-Query-Options": f"batchSize={self.batch_size}"}
        body = self.http.get_json(f"/services/data/{self.version}/query", params={"q": soql}, headers=headers)
        while True:
            if not isinstance(body, dict) or "records" not in body or "done" not in body:
                raise ContractError("salesforce: query answer without records/done")
            yield body
            if body["done"]:
                return
            next_url = body.get("nextRecordsUrl")
            if not next_url:
                raise ContractError("salesforce: done is false but nextRecordsUrl is missing")
            body = self.http.get_json(next_url, headers=headers)

    def count(self, soql: str) -> int:
        body = next(self.query_pages(soql))
        return int(body["totalSize"])

    def limits(self) -> dict[str, Any]:
        return self.http.get_json(f"/services/data/{self.version}/limits")


def window_clause(since: datetime | None, until: datetime | None, field: str = "SystemModstamp") -> str:
    """SOQL datetime literals are unquoted ISO 8601; values come from datetimes, never from text."""
    conditions = []
    if since is not None:
        conditions.append(f"{field} >= {iso_utc(since)}")
    if until is not None:
        conditions.append(f"{field} < {iso_utc(until)}")
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


class SalesforceObjectStream:
    source, primary_key, cursor_field = SOURCE, "Id", "SystemModstamp"

    def __init__(self, client: SalesforceClient, sobject: str, fields: tuple[str, ...]) -> None:
        self.client, self.name, self.fields = client, sobject, fields
        self.required_fields = fields

    def read(self, since: datetime | None, until: datetime | None) -> Iterator[list[dict]]:
        soql = (
            f"SELECT {', '.join(self.fields)} FROM {self.name}{window_clause(since, until)} "
            "ORDER BY SystemModstamp ASC, Id ASC"
        )
        for body in self.client.query_pages(soql):
            records = body["records"]
            check_contract(SOURCE, self.name, records, self.required_fields)
            if records:
                yield records

    def count(self, since: datetime, until: datetime) -> int:
        return self.client.count(f"SELECT COUNT() FROM {self.name}{window_clause(since, until)}")


def streams(settings: SourceSettings) -> list[Stream]:
    client = SalesforceClient(settings)
    return [SalesforceObjectStream(client, sobject, fields) for sobject, fields in OBJECT_FIELDS.items()]
