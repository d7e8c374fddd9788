"""The sandbox's Salesforce org: what kind of org it is (a setting), its sessions, describe, deletions and merges.

Settings a test (or ``make run``) changes on ``SalesforceApi.org``:
- ``multi_currency`` (default True): a single-currency org has no ``CurrencyIsoCode`` on any object (asking
  for it is ``INVALID_FIELD``, describe does not list it) and its ``Organization.DefaultCurrencyIsoCode`` is
  ``currency``.
- ``session_seconds`` (default None: never): an access token from ``/services/oauth2/token`` stops working
  this many seconds after it was issued (401 ``INVALID_SESSION_ID``), as at the org's session timeout.
- ``default_allocations`` (default False) and ``default_gau`` (a GAU Id): NPSP's Default Allocations setting
  (``npsp__Allocations_Settings__c``); off, as the generated gifts without allocation ("missing") need.
- ``missing``: objects (``"Campaign"``) and fields (``"Contact.CDP_Person_Id__c"``) this org lacks: a
  deliberately incomplete org for ``cdp sources check``.
- ``delete_record(sobject, id, master_id=None)``: a record deleted (a Contact, with a master, merged into another): it
  leaves ``/query``, and ``/queryAll`` serves it with ``IsDeleted: true`` and ``MasterRecordId``.

Shapes followed: Salesforce Help, "OAuth 2.0 Client Credentials Flow for Server-to-Server Integration"
(token answer ``{"access_token", "instance_url", "id", "token_type", "issued_at", "signature"}``; an error
``{"error": "invalid_client", "error_description": ...}``); REST API Developer Guide, "sObject Describe"
(``{"name", "queryable", "createable", "updateable", "fields": [{"name", "type", "custom", "createable",
"updateable", "externalId", ...}]}``) and "QueryAll". Checked against tests/vendor_material/salesforce/.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cdp_sandbox.apis import Request, Response

CLIENT_ID = "3MVG9sandboxConnectedAppConsumerKey"
# Objects the sandbox knows beyond its generated tables, with the fields describe lists for them.
EXTRA_OBJECTS: dict[str, tuple[str, ...]] = {
    "Organization": ("Id", "Name", "DefaultCurrencyIsoCode", "IsSandbox"),
    "Campaign": ("Id", "Name", "IsActive", "Type", "CurrencyIsoCode"),
    "CampaignMember": ("Id", "CampaignId", "ContactId", "Status", "CDP_Trigger_Key__c"),
    # NPSP's hierarchy custom setting (Allocations_Settings__c): the org-wide row only.
    "npsp__Allocations_Settings__c": (
        "Id",
        "SetupOwnerId",
        "npsp__Default_Allocations_Enabled__c",
        "npsp__Default__c",
    ),
}
# Fields the write API takes (crm_writes.SCHEMA) on top of what the read API serves.
WRITE_FIELDS: dict[str, tuple[str, ...]] = {
    "Contact": ("CDP_Person_Id__c", "CDP_Course_Messages_Consent__c", "CDP_Fundraising_Consent__c"),
}
READ_ONLY = frozenset(
    {"Id", "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp", "MasterRecordId"}
)


@dataclass
class SandboxOrg:
    static_token: str  # the credential the sandbox always accepted (a token pasted into the connection)
    client_secret: str
    multi_currency: bool = True
    currency: str = "USD"
    session_seconds: float | None = None
    default_allocations: bool = False
    default_gau: str | None = None
    missing: set[str] = field(default_factory=set)
    clock: Callable[[], float] = time.monotonic
    tokens_issued: int = 0
    # record id -> (sObject, master id, when): records deleted (or merged into the master) in the CRM
    removed: dict[str, tuple[str, str | None, int]] = field(default_factory=dict)
    _tokens: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------ sessions
    def accepts(self, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        if scheme not in ("Bearer", "OAuth") or not token:
            return False
        if token == self.static_token:
            return True
        with self._lock:
            issued = self._tokens.get(token)
        if issued is None:
            return False
        return self.session_seconds is None or self.clock() - issued < self.session_seconds

    def token(self, request: Request, instance_url: str) -> Response:
        form = {key: values[0] for key, values in request.form().items() if values}
        if form.get("grant_type") != "client_credentials":
            return Response(
                400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"}
            )
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != self.client_secret:
            return Response(
                400, {"error": "invalid_client", "error_description": "invalid client credentials"}
            )
        token = "00Dsandbox!" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = self.clock()
            self.tokens_issued += 1
        return Response(
            200,
            {
                "access_token": token,
                "signature": "c2FuZGJveA==",
                "scope": "api",
                "instance_url": instance_url,
                "id": f"{instance_url}/id/00DSB0000000001AAA/005SB0000000INTEGR",
                "token_type": "Bearer",
                "issued_at": str(int(time.time() * 1000)),
            },
        )

    def expire_sessions(self) -> None:
        """Every token issued so far stops working (the static token too is unaffected: it never renews)."""
        with self._lock:
            self._tokens = dict.fromkeys(self._tokens, float("-inf"))
        if self.session_seconds is None:
            self.session_seconds = 10**9

    # ------------------------------------------------------------ schema
    def has_object(self, sobject: str) -> bool:
        return sobject not in self.missing

    def visible_fields(self, sobject: str, fields: Iterable[str]) -> list[str]:
        names = [*fields, *WRITE_FIELDS.get(sobject, ())]
        if sobject in ("Contact", "Account"):
            names.append("MasterRecordId")
        seen: list[str] = []
        for name in names:
            if name in seen or f"{sobject}.{name}" in self.missing:
                continue
            if name == "CurrencyIsoCode" and not self.multi_currency:
                continue
            if sobject == "Organization" and name == "DefaultCurrencyIsoCode" and self.multi_currency:
                continue  # assumption: like CurrencyIsoCode, only one kind of org has it (see the connector)
            seen.append(name)
        return seen

    def describe(self, sobject: str, fields: Iterable[str], version: str) -> dict[str, Any]:
        names = self.visible_fields(sobject, fields)
        return {
            "name": sobject,
            "label": sobject,
            "custom": sobject.endswith("__c"),
            "queryable": True,
            "createable": sobject not in ("Organization",),
            "updateable": sobject not in ("Organization",),
            "deletable": sobject not in ("Organization",),
            "urls": {"describe": f"/services/data/{version}/sobjects/{sobject}/describe"},
            "fields": [
                {
                    "name": name,
                    "label": name,
                    "type": _field_type(name),
                    "custom": name.endswith("__c"),
                    "nillable": name not in READ_ONLY,
                    "createable": name not in READ_ONLY,
                    "updateable": name not in READ_ONLY,
                    "externalId": name in ("CDP_Person_Id__c", "CDP_Trigger_Key__c"),
                    "unique": name in ("CDP_Person_Id__c", "CDP_Trigger_Key__c"),
                }
                for name in names
            ],
        }

    def organization(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "attributes": {"type": "Organization"},
            "Id": "00DSB0000000001AAA",
            "Name": "Sandbox Nonprofit",
            "IsSandbox": True,
        }
        if not self.multi_currency:
            record["DefaultCurrencyIsoCode"] = self.currency
        return record

    def allocation_settings(self) -> dict[str, Any]:
        return {
            "attributes": {"type": "npsp__Allocations_Settings__c"},
            "Id": "a0ASB0000000001AAA",
            "SetupOwnerId": "00DSB0000000001AAA",
            "npsp__Default_Allocations_Enabled__c": self.default_allocations,
            "npsp__Default__c": self.default_gau,
        }

    # ------------------------------------------------------------ deletions and merges
    def delete_record(
        self, sobject: str, record_id: str, master_id: str | None = None, at: int | None = None
    ) -> None:
        self.removed[record_id] = (sobject, master_id, int(time.time()) if at is None else at)

    def removed_ids(self, sobject: str) -> list[str]:
        return [record_id for record_id, (kind, _master, _at) in self.removed.items() if kind == sobject]

    def shape(self, sobject: str, record: dict[str, Any]) -> dict[str, Any]:
        """A record as this org serves it: without the fields it lacks, and deleted or merged as told."""
        if not self.multi_currency:
            record.pop("CurrencyIsoCode", None)
        for name in [n for n in record if f"{sobject}.{n}" in self.missing]:
            record.pop(name)
        if sobject in ("Contact", "Account"):
            record.setdefault("MasterRecordId", None)
        removed = self.removed.get(record.get("Id", ""))
        if removed is not None and removed[0] == sobject:
            record["IsDeleted"] = True
            if sobject in ("Contact", "Account"):  # the merge-capable objects
                record["MasterRecordId"] = removed[1]
        return record


def _field_type(name: str) -> str:
    if name == "Id" or name.endswith("Id") and name not in ("CDP_Person_Id__c",):
        return "id" if name == "Id" else "reference"
    if name.startswith("Is") or name.startswith("Has") or name.endswith("Consent__c"):
        return "boolean"
    if name in ("Amount", "npsp__Amount__c"):
        return "currency"
    if name == "npsp__Percent__c":
        return "percent"
    if name.endswith("Date") and name not in ("CloseDate", "Birthdate"):
        return "datetime"
    if name in ("CloseDate", "Birthdate"):
        return "date"
    if name == "SystemModstamp":
        return "datetime"
    return "string"
