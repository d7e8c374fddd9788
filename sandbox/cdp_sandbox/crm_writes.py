"""The sandbox's Salesforce write API: what the CRM push and the completion triggers talk to.

Followed from the REST API Developer Guide:
- "Upsert Records Using sObject Collections": ``PATCH /services/data/vXX.X/composite/sobjects/<SObject>/
  <ExternalIdField>`` with ``{"allOrNone": false, "records": [{"attributes": {"type": ...}, ...}]}`` (at most
  200); HTTP 200 with one UpsertResult per record, in order: ``{"id", "success", "errors", "created"}``,
  errors as ``{"statusCode", "message", "fields"}``. A malformed request is a 400 list of
  ``{"message", "errorCode"}``.
- "Insert or Update (Upsert) a Record Using an External ID": ``PATCH .../sobjects/<SObject>/<Field>/<value>``
  (201 ``{"id", "success", "errors", "created": true}`` on insert, 200 on update) and ``GET`` of the same
  path for the record.
- "Get Records Using sObject Collections": ``POST .../composite/sobjects/<SObject>`` with ``{"ids",
  "fields"}``; one record (or null when not found) per id, in order.
- "Update Records Using sObject Collections": ``PATCH .../composite/sobjects`` with ``{"allOrNone": false,
  "records": [{"attributes": {"type": ...}, "id": ...}]}``; one SaveResult ``{"id", "success", "errors"}`` per
  record, in order (an unknown id: INVALID_CROSS_REFERENCE_KEY). An external id field is unique: a value
  another record holds already fails with DUPLICATE_VALUE.
- A lookup may be given by the parent's external id (``"Contact": {"CDP_Person_Id__c": "..."}``); an
  unknown one fails the record with INVALID_FIELD "Foreign key external ID: ... not found".
Each write sets ``LastModifiedDate``, ``SystemModstamp`` (milliseconds, never going back) and
``LastModifiedById`` (the integration user's id for API calls, a staff user's for a simulated edit).

Objects kept here: ``Contact`` (external id ``CDP_Person_Id__c``; the CRM's Contacts are the world's
generated NPSP Contacts, the ones staff created, loaded on first use, plus those created by writes, so an
upsert that duplicates a Contact staff created is visible here; the read API keeps serving the generated
data as generated), ``Campaign`` (one seeded: the donor appeal to course
completers) and ``CampaignMember`` (external id ``CDP_Trigger_Key__c``; one member per campaign and
contact, as Salesforce enforces: a second gets DUPLICATE_VALUE). Validation per record: required fields,
field lengths, email format, unknown fields.

Faults (``source="salesforce"``, stream = the SObject): the usual request faults, and ``lose_response``,
which applies the request and then answers 502 as if the connection dropped on the way back.

Admin: ``POST /_sandbox/salesforce/staff-edit`` ``{"sobject", "external_id_field", "external_id",
"fields"}`` edits a record as a staff user would in the UI.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from cdp_sandbox.apis import Request, Response, VendorApis
from cdp_sandbox.core import WorldCore

INTEGRATION_USER_ID = "005SB0000000INTEGR"
STAFF_USER_ID = "005SB0000000STAFF1"
COMPLETION_CAMPAIGN_ID = "701SB0000000000001"
MAX_COLLECTION = 200

WRITE_PATH = re.compile(
    r"^/services/data/(?P<version>v\d+\.\d)/(?:(?P<composite>composite/)?sobjects)/(?P<sobject>\w+)"
    r"(?:/(?P<field>\w+)(?:/(?P<value>[^/]+))?)?/?$"
)
COLLECTION_PATH = re.compile(r"^/services/data/(?P<version>v\d+\.\d)/composite/sobjects/?$")
EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")

# Per object: writable fields with their maximum length (None: not text), required fields, external ids.
SCHEMA: dict[str, dict[str, Any]] = {
    "Contact": {
        "fields": {
            "FirstName": 40,
            "LastName": 80,
            "Email": 80,
            "Phone": 40,
            "HasOptedOutOfEmail": None,
            "CDP_Person_Id__c": 36,
            "CDP_Course_Messages_Consent__c": None,
            "CDP_Fundraising_Consent__c": None,
        },
        "required": ("LastName",),
        "external_ids": ("CDP_Person_Id__c",),
        "prefix": "003",
    },
    "Campaign": {
        "fields": {"Name": 80, "IsActive": None, "Type": 40},
        "required": ("Name",),
        "external_ids": (),
        "prefix": "701",
    },
    "CampaignMember": {
        "fields": {"CampaignId": 18, "ContactId": 18, "Status": 40, "CDP_Trigger_Key__c": 80},
        "required": ("CampaignId", "ContactId"),
        "external_ids": ("CDP_Trigger_Key__c",),
        "prefix": "00v",
        "lookups": {"Contact": ("ContactId", "Contact")},
    },
}
SYSTEM_FIELDS = ("Id", "CreatedDate", "LastModifiedDate", "LastModifiedById", "SystemModstamp", "IsDeleted")


def salesforce_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """Salesforce's error body, for the read API (``salesforce``) and the write API alike."""
    return Response(status, [{"message": message, "errorCode": code}], headers or {})


def generated_contacts(world: WorldCore) -> Iterator[dict[str, Any]]:
    """The world's NPSP Contacts as the read API serves them: the Contacts staff created in the CRM."""
    table = world.table("salesforce", "Contact")
    for index in range(len(table)):
        yield table.record(index)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


class SalesforceWrites:
    """Records created and changed through the write API, with Salesforce's bookkeeping fields."""

    def __init__(
        self,
        clock: Callable[[], datetime] | None = None,
        existing_contacts: Callable[[], Iterable[dict[str, Any]]] | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.clock = clock or (lambda: datetime.now(UTC))
        self._records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in SCHEMA}
        self._existing_contacts = existing_contacts
        self._counters: dict[str, int] = dict.fromkeys(SCHEMA, 0)
        self._last_time = datetime(2000, 1, 1, tzinfo=UTC)
        self.write_requests = 0
        self._insert(
            "Campaign",
            {"Name": "Course completers — donor appeal", "IsActive": True, "Type": "Other"},
            record_id=COMPLETION_CAMPAIGN_ID,
        )

    @property
    def records(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Every record per object; the Contacts staff created are loaded on first use."""
        with self.lock:
            if self._existing_contacts is not None:
                load, self._existing_contacts = self._existing_contacts, None
                for contact in load():
                    record = {k: v for k, v in contact.items() if k != "attributes"}
                    record.setdefault("LastModifiedById", STAFF_USER_ID)
                    record.setdefault("CDP_Person_Id__c", None)  # created by staff: not linked to us yet
                    if not record.get("IsDeleted"):
                        self._records["Contact"][record["Id"]] = record
            return self._records

    # ---------------------------------------------------------------- bookkeeping
    def _now(self) -> datetime:
        moment = self.clock().astimezone(UTC)
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        if moment <= self._last_time:
            moment = self._last_time + timedelta(milliseconds=1)
        self._last_time = moment
        return moment

    def _insert(
        self, sobject: str, values: dict[str, Any], *, record_id: str | None = None
    ) -> dict[str, Any]:
        if record_id is None:
            self._counters[sobject] += 1
            record_id = f"{SCHEMA[sobject]['prefix']}SB{self._counters[sobject]:013d}"
        stamp = _stamp(self._now())
        record = {
            "Id": record_id,
            **values,
            "CreatedDate": stamp,
            "LastModifiedDate": stamp,
            "LastModifiedById": INTEGRATION_USER_ID,
            "SystemModstamp": stamp,
            "IsDeleted": False,
        }
        self._records[sobject][record_id] = record
        return record

    def _touch(self, record: dict[str, Any], values: dict[str, Any], user: str) -> None:
        record.update(values)
        stamp = _stamp(self._now())
        record.update({"LastModifiedDate": stamp, "SystemModstamp": stamp, "LastModifiedById": user})

    def find(self, sobject: str, field: str, value: Any) -> dict[str, Any] | None:
        for record in self.records[sobject].values():
            if record.get(field) == value:
                return record
        return None

    def by_external_id(self, sobject: str, field: str) -> dict[str, dict[str, Any]]:
        """Every record of ``sobject`` keyed by an external id (for tests and the admin API)."""
        with self.lock:
            return {
                str(r[field]): dict(r) for r in self.records[sobject].values() if r.get(field) is not None
            }

    def snapshot(self) -> bytes:
        """All records, canonically encoded: equal snapshots mean nothing was written."""
        with self.lock:
            return orjson.dumps(self.records, option=orjson.OPT_SORT_KEYS)

    # ---------------------------------------------------------------- validation and upsert
    def _errors(self, sobject: str, values: dict[str, Any], creating: bool) -> list[dict[str, Any]]:
        schema = SCHEMA[sobject]
        errors = []
        for name, value in values.items():
            if name not in schema["fields"]:
                errors.append(
                    {
                        "statusCode": "INVALID_FIELD",
                        "message": f"No such column '{name}' on sobject of type {sobject}",
                        "fields": [name],
                    }
                )
                continue
            limit = schema["fields"][name]
            if limit is not None and value is not None and len(str(value)) > limit:
                errors.append(
                    {
                        "statusCode": "STRING_TOO_LONG",
                        "message": f"{name}: data value too large: {str(value)[:20]}… (max length={limit})",
                        "fields": [name],
                    }
                )
            if name == "Email" and value not in (None, "") and not EMAIL.match(str(value)):
                errors.append(
                    {
                        "statusCode": "INVALID_EMAIL_ADDRESS",
                        "message": f"Email: invalid email address: {value}",
                        "fields": ["Email"],
                    }
                )
        for name in schema["required"]:
            missing = values.get(name) in (None, "") if (creating or name in values) else False
            if missing:
                errors.append(
                    {
                        "statusCode": "REQUIRED_FIELD_MISSING",
                        "message": f"Required fields are missing: [{name}]",
                        "fields": [name],
                    }
                )
        return errors

    def _resolve_lookups(self, sobject: str, values: dict[str, Any]) -> list[dict[str, Any]]:
        for relation, (id_field, parent) in SCHEMA[sobject].get("lookups", {}).items():
            reference = values.pop(relation, None)
            if not isinstance(reference, dict):
                continue
            (field, key), *_ = [(k, v) for k, v in reference.items() if k != "attributes"] or [("", None)]
            parent_record = self.find(parent, field, key) if field in SCHEMA[parent]["external_ids"] else None
            if parent_record is None:
                return [
                    {
                        "statusCode": "INVALID_FIELD",
                        "message": f"Foreign key external ID: {key} not found for field {field} in entity "
                        f"{parent}",
                        "fields": [],
                    }
                ]
            values[id_field] = parent_record["Id"]
        return []

    def upsert(self, sobject: str, field: str, key: Any, values: dict[str, Any]) -> dict[str, Any]:
        """One UpsertResult, as sObject Collections returns it per record."""
        values = {k: v for k, v in values.items() if k != "attributes"}
        values.pop(field, None)
        with self.lock:
            errors = self._resolve_lookups(sobject, values)
            existing = self.find(sobject, field, key) if key not in (None, "") else None
            if key in (None, ""):
                errors.append(
                    {
                        "statusCode": "MISSING_ARGUMENT",
                        "message": f"{field} not specified",
                        "fields": [field],
                    }
                )
            if not errors:
                errors = self._errors(sobject, {**values, field: key}, creating=existing is None)
            if not errors and sobject == "CampaignMember":
                clash = [
                    r
                    for r in self.records["CampaignMember"].values()
                    if r is not existing
                    and r.get("CampaignId") == values.get("CampaignId", (existing or {}).get("CampaignId"))
                    and r.get("ContactId") == values.get("ContactId", (existing or {}).get("ContactId"))
                ]
                if clash:
                    errors.append(
                        {
                            "statusCode": "DUPLICATE_VALUE",
                            "message": "Already a campaign member.",
                            "fields": [],
                        }
                    )
                elif values.get("CampaignId") not in self.records["Campaign"]:
                    errors.append(
                        {
                            "statusCode": "INVALID_CROSS_REFERENCE_KEY",
                            "message": "invalid cross reference id",
                            "fields": ["CampaignId"],
                        }
                    )
            if errors:
                return {"id": None, "success": False, "errors": errors}
            if existing is None:
                record = self._insert(sobject, {**values, field: key})
                return {"id": record["Id"], "success": True, "errors": [], "created": True}
            self._touch(existing, values, INTEGRATION_USER_ID)
            return {"id": existing["Id"], "success": True, "errors": [], "created": False}

    def _taken(self, sobject: str, record_id: str, values: dict[str, Any]) -> list[dict[str, Any]]:
        """DUPLICATE_VALUE for an external id another record already holds (external ids are unique)."""
        errors = []
        for name in SCHEMA[sobject]["external_ids"]:
            value = values.get(name)
            holder = self.find(sobject, name, value) if value not in (None, "") else None
            if holder is not None and holder["Id"] != record_id:
                errors.append(
                    {
                        "statusCode": "DUPLICATE_VALUE",
                        "message": f"duplicate value found: {name} duplicates value on record with id: "
                        f"{holder['Id']}",
                        "fields": [name],
                    }
                )
        return errors

    def update(self, record: dict[str, Any]) -> dict[str, Any]:
        """One SaveResult of an sObject Collections update: the record named by its ``id``."""
        sobject = (record.get("attributes") or {}).get("type")
        record_id = record.get("id") or record.get("Id")
        values = {k: v for k, v in record.items() if k not in ("attributes", "id", "Id")}
        with self.lock:
            existing = self.records.get(sobject, {}).get(str(record_id)) if sobject in SCHEMA else None
            if existing is None:
                errors = [
                    {
                        "statusCode": "INVALID_CROSS_REFERENCE_KEY",
                        "message": "invalid cross reference id",
                        "fields": [],
                    }
                ]
            else:
                errors = self._errors(sobject, values, creating=False) or self._taken(
                    sobject, existing["Id"], values
                )
            if errors:
                return {"id": record_id, "success": False, "errors": errors}
            self._touch(existing, values, INTEGRATION_USER_ID)
            return {"id": existing["Id"], "success": True, "errors": []}

    def staff_edit(self, sobject: str, field: str, key: Any, values: dict[str, Any]) -> dict[str, Any]:
        """What a staff member's edit in the Salesforce UI does to a record."""
        with self.lock:
            record = self.find(sobject, field, key)
            if record is None:
                raise KeyError(f"no {sobject} with {field} = {key}")
            self._touch(record, dict(values), STAFF_USER_ID)
            return dict(record)

    def retrieve(self, sobject: str, ids: list[str], fields: list[str]) -> list[dict[str, Any] | None]:
        with self.lock:
            found = []
            for record_id in ids:
                record = self.records[sobject].get(record_id)
                if record is None:
                    found.append(None)
                    continue
                picked = {"attributes": {"type": sobject, "url": f"/sobjects/{sobject}/{record_id}"}}
                picked.update({name: record.get(name) for name in fields})
                found.append(picked)
            return found

    # ---------------------------------------------------------------- HTTP
    @staticmethod
    def handles(request: Request) -> bool:
        if COLLECTION_PATH.match(request.path):
            return request.method == "PATCH"
        return bool(WRITE_PATH.match(request.path)) and request.method in ("GET", "PATCH", "POST")

    @staticmethod
    def _refused(request: Request, apis: VendorApis, sobject: str) -> Response | None:
        """The planned fault for this call, or the refusal of a wrong credential; None when it may proceed."""
        fault_response = apis.request_faults(
            "salesforce",
            sobject,
            {
                "rate_limit": lambda f: salesforce_error(
                    429,
                    "REQUEST_LIMIT_EXCEEDED",
                    "ConcurrentPerOrgLongTxn Limit exceeded.",
                    {"Retry-After": str(f.retry_after)},
                ),  # fmt: skip
                "server_error": lambda f: salesforce_error(
                    f.status, "UNKNOWN_EXCEPTION", "An unexpected error occurred."
                ),
                "auth_failure": lambda f: salesforce_error(
                    401, "INVALID_SESSION_ID", "Session expired or invalid"
                ),
            },
        )
        if fault_response:
            return fault_response
        # The org (cdp_sandbox.salesforce_org) knows the static token and the sessions it issued.
        if not apis.handlers["salesforce"].org.accepts(request.headers.get("authorization", "")):  # type: ignore[attr-defined]
            return salesforce_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        return None

    def handle(self, request: Request, apis: VendorApis) -> Response:
        if COLLECTION_PATH.match(request.path):
            return self._handle_update(request, apis)
        match = WRITE_PATH.match(request.path)
        assert match is not None
        sobject, field, value = match.group("sobject"), match.group("field"), match.group("value")
        composite = bool(match.group("composite"))
        refused = self._refused(request, apis, sobject)
        if refused:
            return refused
        if sobject not in SCHEMA:
            return salesforce_error(404, "NOT_FOUND", f"The requested resource does not exist: {sobject}")
        if (
            field is not None
            and field not in SCHEMA[sobject]["external_ids"]
            and not (composite is False and field == "Id")
        ):
            return salesforce_error(
                404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {field}"
            )
        try:
            body = orjson.loads(request.body) if request.body else {}
        except orjson.JSONDecodeError:
            return salesforce_error(400, "JSON_PARSER_ERROR", "The request body is not valid JSON")
        response = self._answer(request.method, composite, sobject, field, value, body, apis)
        if apis.faults.take("salesforce", sobject, ("lose_response",)):
            return Response(502, b"<html><body>502 Bad Gateway</body></html>", content_type="text/html")
        return response

    def _handle_update(self, request: Request, apis: VendorApis) -> Response:
        """``PATCH /composite/sobjects``: update up to 200 records by their ids."""
        try:
            body = orjson.loads(request.body) if request.body else {}
        except orjson.JSONDecodeError:
            return salesforce_error(400, "JSON_PARSER_ERROR", "The request body is not valid JSON")
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list):
            return salesforce_error(400, "INVALID_FIELD", "records: a list of sObjects is required")
        types = {(r.get("attributes") or {}).get("type") for r in records if isinstance(r, dict)}
        stream = next(iter(types)) if len(types) == 1 else "Contact"
        refused = self._refused(request, apis, stream)
        if refused:
            return refused
        if len(records) > MAX_COLLECTION:
            return salesforce_error(
                400, "EXCEEDED_ID_LIMIT", f"record limit reached. cannot submit more than {MAX_COLLECTION}"
            )
        for record in records:
            if not isinstance(record, dict) or not (record.get("attributes") or {}).get("type"):
                return salesforce_error(
                    400, "INVALID_TYPE", "Each record needs an attributes map with a type"
                )
            if not record.get("id"):
                return salesforce_error(400, "MISSING_ARGUMENT", "Id not specified in an update call")
        if body.get("allOrNone"):
            return salesforce_error(400, "INVALID_FIELD", "the sandbox serves allOrNone=false only")
        with self.lock:
            self.write_requests += 1
            results = [self.update(record) for record in records]
        response = Response(200, results)
        if apis.faults.take("salesforce", stream, ("lose_response",)):
            return Response(502, b"<html><body>502 Bad Gateway</body></html>", content_type="text/html")
        return response

    def _answer(
        self,
        method: str,
        composite: bool,
        sobject: str,
        field: str | None,
        value: str | None,
        body: Any,
        apis: VendorApis,
    ) -> Response:
        if composite and method == "PATCH" and field and value is None:
            if not isinstance(body, dict) or not isinstance(body.get("records"), list):
                return salesforce_error(400, "INVALID_FIELD", "records: a list of sObjects is required")
            records = body["records"]
            if len(records) > MAX_COLLECTION:
                return salesforce_error(
                    400,
                    "EXCEEDED_ID_LIMIT",
                    f"record limit reached. cannot submit more than {MAX_COLLECTION}",
                )
            for record in records:
                if not isinstance(record, dict) or (record.get("attributes") or {}).get("type") != sobject:
                    return salesforce_error(
                        400, "INVALID_TYPE", "Each record needs attributes.type matching the request URI"
                    )
            if body.get("allOrNone"):
                return salesforce_error(400, "INVALID_FIELD", "the sandbox serves allOrNone=false only")
            with self.lock:
                self.write_requests += 1
                results = [self.upsert(sobject, field, record.get(field), record) for record in records]
            return Response(200, results)
        if composite and method == "POST" and field is None:
            if not isinstance(body, dict) or not isinstance(body.get("ids"), list) or not body.get("fields"):
                return salesforce_error(400, "INVALID_FIELD", "ids and fields are required")
            if len(body["ids"]) > 2000:
                return salesforce_error(400, "EXCEEDED_ID_LIMIT", "too many ids")
            return Response(200, self.retrieve(sobject, list(body["ids"]), list(body["fields"])))
        if not composite and field and value is not None and method == "PATCH":
            with self.lock:
                self.write_requests += 1
                result = self.upsert(sobject, field, value, body if isinstance(body, dict) else {})
            if not result["success"]:
                return Response(
                    400,
                    [
                        {"message": e["message"], "errorCode": e["statusCode"], "fields": e["fields"]}
                        for e in result["errors"]
                    ],
                )
            return Response(201 if result["created"] else 200, result)
        if not composite and field and value is not None and method == "GET":
            with self.lock:
                record = self.find(sobject, field, value)
                if record is None:
                    return salesforce_error(404, "NOT_FOUND", "The requested resource does not exist")
                return Response(200, {"attributes": {"type": sobject}, **record})
        return salesforce_error(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed")
