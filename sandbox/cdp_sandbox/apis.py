"""The vendor APIs the sandbox speaks, each as close to the vendor's documentation as we could read it.

Mounted under one port, each vendor below its own prefix (production base URLs differ only there):

Moodle (``/moodle``) — web services REST protocol, https://docs.moodle.org/dev/Web_service_API_functions
and moodle/moodle ``lib/db/services.php``: ``/webservice/rest/server.php`` with ``wstoken``, ``wsfunction``,
``moodlewsrestformat=json``; errors are HTTP 200 with ``{"exception", "errorcode", "message"}``.
Core functions served: ``core_webservice_get_site_info``, ``core_course_get_courses``,
``core_user_get_users_by_field``, ``core_enrol_get_enrolled_users`` (``limitfrom``/``limitnumber`` options).
Moodle core has no paged, modified-since listing of users or enrolments and no count functions, so a
real deployment that syncs incrementally installs a small read-only local plugin (see e.g. the public
``local_*_get_users_by_timemodified`` plugins). The sandbox implements the one we specify, ``local_cdp``:
``local_cdp_get_users``, ``local_cdp_get_enrolments``, ``local_cdp_get_course_completions``,
``local_cdp_get_certificate_requests`` (params ``timefrom`` inclusive, ``timeto`` exclusive, keyset
``aftertime``/``afterid``, ``limitnumber``; returns ``{<items>: [...], "hasmore": bool, "warnings": []}``
with core's column names) and ``local_cdp_count_records(entity, timefrom, timeto)`` -> ``{"count": n}``.

Salesforce (``/salesforce``) — REST API query resource, https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta
``/services/data/vXX.X/query?q=SOQL`` with ``Authorization: Bearer``; ``nextRecordsUrl`` query locators
(batch size from ``Sforce-Query-Options: batchSize=``, 200..2000); errors as a list of
``{"message", "errorCode"}``; ``Sforce-Limit-Info`` header; ``/limits`` with ``DailyApiRequests``. The SOQL
subset: ``SELECT f1, f2 | COUNT() FROM Obj [WHERE <Field> <op> <datetime> [AND ...]] [ORDER BY ...]
[LIMIT n]`` over SystemModstamp, CreatedDate and LastModifiedDate. NPSP objects as in
SalesforceFoundation/NPSP; ``Financial_Transaction_Id__c`` and ``Stripe_Charge_Id__c`` are org custom fields.

Stripe (``/stripe``) — https://docs.stripe.com/api/pagination: ``/v1/charges``, ``/v1/refunds``,
``/v1/balance_transactions``; ``limit`` (1..100), ``starting_after``/``ending_before``,
``created[gte|gt|lte|lt]``; newest first; bearer (or basic) key; ``{"error": {...}}`` bodies.

Typeform (``/typeform``) — https://www.typeform.com/developers/responses/reference/retrieve-responses/:
``/forms/{form_id}/responses`` with ``page_size`` (max 1000), ``since``/``until`` (inclusive), ``after``/
``before`` tokens, ``sort``; body ``{"total_items", "page_count", "items"}``.

Zigpoll (``/zigpoll``) — https://apidocs.zigpoll.com/reference/cursor-pagination: ``/responses`` with
``accountId``, ``pollId``, ``limit``, ``startCursor``; body ``{"data", "hasNextPage", "endCursor"}``, newest
first; ``Authorization: <api key>``. Consent metadata lives apart from responses, on ``/participants``
(same paging); that endpoint's shape is our model of Zigpoll's participant records.

ReferralHero (``/referralhero``) — https://support.referralhero.com/integrate/rest-api/endpoints-reference:
``/api/v2/lists/{uuid}/subscribers`` (``page``, 50 per page, ``sort``), ``/api/v2/lists/{uuid}/bonuses``;
body ``{"status": "ok", "data": {...,"pagination": {...}}, "calls_left", "timestamp"}``; bearer or
``X-API-Key``. Subscriber fields per the documented Subscriber object, plus ``unique_clicks`` and
``rewards`` (our reading of the dashboard's clicks and reward deliveries).

Where a vendor's error body for a case is not documented (Zigpoll and ReferralHero auth errors,
Typeform's 429 body), the shape used is marked "assumed" next to it.
"""

from __future__ import annotations

import base64
import math
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import numpy as np
import orjson

from cdp_sandbox.certificates import CertificateService
from cdp_sandbox.crm_writes import SalesforceWrites, generated_contacts
from cdp_sandbox.faults import Fault, FaultBook
from cdp_sandbox.generator import World, to_epoch
from cdp_sandbox.referral_rewards import RewardDesk
from cdp_sandbox.tables import Table


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def form(self) -> dict[str, list[str]]:
        merged = dict(self.query)
        if self.body and "application/x-www-form-urlencoded" in self.headers.get("content-type", ""):
            for key, values in parse_qs(self.body.decode(), keep_blank_values=True).items():
                merged.setdefault(key, []).extend(values)
        return merged


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-able, or bytes/str for raw bodies
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return orjson.dumps(self.body, option=orjson.OPT_NON_STR_KEYS)


class Listing:
    """Applies the stream's data faults (drops, skipped pages, renames, edits) to what a page serves."""

    def __init__(
        self, world: World, faults: FaultBook, lock: threading.RLock, source: str, stream: str
    ) -> None:
        self.world, self.faults, self.lock = world, faults, lock
        self.source, self.stream = source, stream
        self.table = world.table(source, stream)
        self.excluded = dropped_rows(faults, self.table, source, stream)

    def page(
        self,
        since: int | None,
        until: int | None,
        limit: int,
        *,
        after: tuple[int, int] | None = None,
        descending: bool = False,
    ) -> tuple[list[int], bool]:
        with self.lock:
            if after is not None and self.faults.take(self.source, self.stream, ("drop_page",)):
                skipped, _ = self.table.page(
                    since, until, limit, after=after, descending=descending, exclude=self.excluded
                )
                if skipped:  # the page asked for is silently replaced by the one after it
                    after = self.key(skipped[-1])
            rows, more = self.table.page(
                since, until, limit, after=after, descending=descending, exclude=self.excluded
            )
            for fault in self.faults.take(self.source, self.stream, ("edit_during_sync",)):
                if rows:
                    ahead, _ = self.table.page(
                        since,
                        until,
                        max(fault.count, 1) * 3,
                        after=self.key(rows[-1]),
                        descending=descending,
                        exclude=self.excluded,
                    )
                    edited = ahead[::3][: max(fault.count, 1)]
                    self.table.touch(edited, self.world.end_ts + fault.hits)
                    fault.affected_ids.extend(self.table.id_of(i) for i in edited)
        return rows, more

    def key(self, row: int) -> tuple[int, int]:
        return int(self.table.times()[row]), row

    def renames(self) -> list[tuple[str, str]]:
        return [
            (f.field, f.renamed_to)
            for f in self.faults.list()
            if f.kind == "rename_field" and f.matches(self.source, self.stream)
        ]

    def encoded(self, rows: list[int]) -> list[Any]:
        """The records as JSON fragments ready to embed in a response (cached per row, as a real API serves)."""
        if self.renames():
            return self.render(rows)
        return [orjson.Fragment(self.table.rendered(row)) for row in rows]

    def render(self, rows: list[int]) -> list[dict[str, Any]]:
        renames = self.renames()
        records = [self.table.builder(row) for row in rows]
        for old, new in renames:
            for record in records:
                if old in record:
                    record[new] = record.pop(old)
        return records


def dropped_rows(faults: FaultBook, table: Table, source: str, stream: str) -> frozenset[int]:
    """Rows hidden by drop_records faults; chosen once per fault, evenly across its window."""
    rows: set[int] = set()
    for fault in faults.list():
        if fault.kind != "drop_records" or not fault.matches(source, stream):
            continue
        if not fault.affected_ids:
            window = table.window(to_epoch(fault.since), to_epoch(fault.until))
            count = min(fault.count, window.shape[0])
            picked = (
                window[np.linspace(0, window.shape[0] - 1, count).astype(np.int64)] if count else window[:0]
            )
            fault.affected_ids = [table.id_of(int(i)) for i in np.unique(picked)]
        rows.update(int(table.index_of(rid)) for rid in fault.affected_ids)
    return frozenset(rows)


def _json_error(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, body, headers or {})


def _now() -> int:
    return int(time.time())


def _parse_time(text: str | None) -> int | None:
    """Unix seconds or ISO 8601 (with Z or offset)."""
    if text is None or text == "":
        return None
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def _encode_cursor(*parts: int) -> str:
    return base64.urlsafe_b64encode(":".join(map(str, parts)).encode()).decode().rstrip("=")


def _decode_cursor(text: str) -> list[int]:
    padded = text + "=" * (-len(text) % 4)
    return [int(p) for p in base64.urlsafe_b64decode(padded.encode()).decode().split(":")]


class VendorApis:
    """Routes one request to its vendor and answers it as the vendor would."""

    def __init__(self, world: World, faults: FaultBook) -> None:
        self.world = world
        self.faults = faults
        self.lock = threading.RLock()
        self.salesforce_writes = SalesforceWrites(existing_contacts=lambda: generated_contacts(world))
        self.certificate_service = CertificateService()
        self.api_calls: dict[str, int] = {}
        self._soql_locators: OrderedDict[str, tuple[str, np.ndarray, list[str]]] = OrderedDict()
        self.reward_desk = RewardDesk(world)

    # ---------------------------------------------------------------- plumbing
    def handle(self, source: str, request: Request) -> Response:
        handler: Callable[[Request], Response] = getattr(self, f"_{source}")
        self.api_calls[source] = self.api_calls.get(source, 0) + 1
        return handler(request)

    def _request_faults(
        self, source: str, stream: str | None, errors: dict[str, Callable[[Fault], Response]]
    ) -> Response | None:
        """Apply request-level faults; return the vendor's error response if one fires."""
        for fault in self.faults.request_faults(source, stream):
            if fault.kind == "slow":
                time.sleep(fault.delay)
            elif fault.kind in errors:
                return errors[fault.kind](fault)
        return None

    def listing(self, source: str, stream: str) -> Listing:
        return Listing(self.world, self.faults, self.lock, source, stream)

    # ---------------------------------------------------------------- Moodle
    MOODLE_ENTITIES = {
        "local_cdp_get_users": ("users", "users", "timemodified"),
        "local_cdp_get_enrolments": ("enrollments", "enrolments", "timemodified"),
        "local_cdp_get_course_completions": ("course_completions", "completions", "timecompleted"),
        "local_cdp_get_certificate_requests": ("certificate_requests", "issues", "timecreated"),
    }
    MOODLE_COUNT_ENTITIES = {
        "users": "users",
        "enrolments": "enrollments",
        "completions": "course_completions",
        "certificate_requests": "certificate_requests",
        "courses": "courses",
    }

    @staticmethod
    def _moodle_exception(
        errorcode: str, message: str, exception: str = "moodle_exception", debuginfo: str | None = None
    ) -> Response:
        body: dict[str, Any] = {"exception": exception, "errorcode": errorcode, "message": message}
        if debuginfo:
            body["debuginfo"] = debuginfo
        return Response(200, body)  # Moodle reports web service errors with HTTP 200

    def _moodle(self, request: Request) -> Response:
        if not request.path.endswith("/webservice/rest/server.php"):
            return Response(404, b"<html><body>404 Not Found</body></html>", content_type="text/html")
        form = request.form()
        params = _moodle_params(form)
        function = params.get("wsfunction", "")
        stream = self.MOODLE_ENTITIES.get(function, (None,))[0]
        if function == "local_cdp_count_records":
            stream = self.MOODLE_COUNT_ENTITIES.get(str(params.get("entity")))
        fault_response = self._request_faults(
            "moodle",
            stream,
            {
                "rate_limit": lambda f: Response(
                    429,
                    b"<html><body><h1>429 Too Many Requests</h1></body></html>",
                    {"Retry-After": str(f.retry_after)},
                    "text/html",
                ),
                "server_error": lambda f: Response(
                    f.status,
                    b"<html><body><h1>500 Internal Server Error</h1></body></html>",
                    content_type="text/html",
                ),
                "auth_failure": lambda f: self._moodle_exception(
                    "invalidtoken", "Invalid token - token not found"
                ),
            },
        )
        if fault_response:
            return fault_response
        if params.get("wstoken") != self.world.credentials.moodle:
            return self._moodle_exception("invalidtoken", "Invalid token - token not found")
        if params.get("moodlewsrestformat", "xml") != "json":
            return Response(
                200,
                b'<?xml version="1.0" encoding="UTF-8" ?><RESPONSE></RESPONSE>',
                content_type="application/xml",
            )
        try:
            if function in self.MOODLE_ENTITIES:
                return Response(200, self._moodle_local_listing(function, params))
            if function == "local_cdp_count_records":
                table_stream = self.MOODLE_COUNT_ENTITIES.get(str(params.get("entity")))
                if table_stream is None:
                    raise ValueError(f"entity: unknown value {params.get('entity')!r}")
                table = self.world.table("moodle", table_stream)
                count = table.count(_int_param(params, "timefrom"), _int_param(params, "timeto") or None)
                return Response(200, {"count": count, "warnings": []})
            if function == "core_webservice_get_site_info":
                return Response(200, self._moodle_site_info())
            if function == "core_course_get_courses":
                courses = self.listing("moodle", "courses")
                rows = courses.table.window(None, None).tolist()
                wanted = {int(v) for v in params.get("options", {}).get("ids", [])}
                records = courses.render(rows)
                return Response(200, [c for c in records if not wanted or c["id"] in wanted])
            if function == "core_user_get_users_by_field":
                return Response(200, self._moodle_users_by_field(params))
            if function == "core_enrol_get_enrolled_users":
                return Response(200, self._moodle_enrolled_users(params))
        except (ValueError, KeyError, TypeError) as error:
            return self._moodle_exception(
                "invalidparameter",
                "Invalid parameter value detected",
                "invalid_parameter_exception",
                str(error),
            )
        return self._moodle_exception(
            "invalidrecord",
            "Can't find data record in database table external_functions.",
            "dml_missing_record_exception",
        )

    def _moodle_local_listing(self, function: str, params: dict[str, Any]) -> dict[str, Any]:
        stream, key, _ = self.MOODLE_ENTITIES[function]
        listing = self.listing("moodle", stream)
        limit = max(1, min(_int_param(params, "limitnumber") or 1000, 5000))
        after = None
        if params.get("afterid") not in (None, "", "0"):
            after_index = listing.table.index_of(int(params["afterid"]))
            after = (_int_param(params, "aftertime"), after_index)
        rows, more = listing.page(
            _int_param(params, "timefrom"), _int_param(params, "timeto") or None, limit, after=after
        )
        return {key: listing.encoded(rows), "hasmore": more, "warnings": []}

    def _moodle_site_info(self) -> dict[str, Any]:
        functions = [
            "core_webservice_get_site_info",
            "core_course_get_courses",
            "core_user_get_users_by_field",
            "core_enrol_get_enrolled_users",
            "local_cdp_count_records",
            *self.MOODLE_ENTITIES,
        ]
        return {
            "sitename": "Nonprofit Learning (sandbox)",
            "username": "cdp_sync",
            "firstname": "CDP",
            "lastname": "Sync",
            "fullname": "CDP Sync",
            "lang": "en",
            "userid": 2,
            "siteurl": "https://lms.example.org",
            "userpictureurl": "",
            "functions": [{"name": name, "version": "2024042200"} for name in functions],
            "downloadfiles": 0,
            "uploadfiles": 0,
            "release": "4.4 (Build: 20240422)",
            "version": "2024042200",
            "mobilecssurl": "",
            "advancedfeatures": [],
            "usercanmanageownfiles": False,
            "userquota": 0,
            "usermaxuploadfilesize": -1,
            "userhomepage": 1,
            "siteid": 1,
            "sitecalendartype": "gregorian",
            "usercalendartype": "gregorian",
        }

    def _moodle_users_by_field(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if params.get("field") != "id":
            raise ValueError("field: only 'id' is supported by the sandbox")
        listing = self.listing("moodle", "users")
        rows = []
        for value in params.get("values", []):
            index = listing.table.index_of(int(value))
            if index is not None and 0 <= index < len(listing.table) and index not in listing.excluded:
                rows.append(index)
        return listing.render(rows)

    def _moodle_enrolled_users(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        course_id = int(params["courseid"])
        options = {o.get("name"): o.get("value") for o in params.get("options", []) if isinstance(o, dict)}
        enrolments = self.world.table("moodle", "enrollments")
        user_rows = np.unique(enrolments.columns["user_row"][enrolments.columns["course"] == course_id - 2])
        start = int(options.get("limitfrom") or 0)
        stop = start + int(options["limitnumber"]) if options.get("limitnumber") else None
        users = self.listing("moodle", "users")
        return users.render([int(r) for r in user_rows[start:stop]])

    # ---------------------------------------------------------------- Salesforce
    SOQL = re.compile(
        r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)"
        r"(?:\s+WHERE\s+(?P<where>.+?))?(?:\s+ORDER\s+BY\s+(?P<order>.+?))?(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
        re.IGNORECASE | re.DOTALL,
    )
    SOQL_CONDITION = re.compile(r"^\s*(\w+)\s*(>=|<=|>|<|=)\s*(\S+)\s*$")
    SOQL_TIME_FIELDS = {
        "systemmodstamp": "modified",
        "lastmodifieddate": "modified",
        "createddate": "created",
    }

    @staticmethod
    def _sf_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
        return Response(status, [{"message": message, "errorCode": code}], headers or {})

    def _salesforce(self, request: Request) -> Response:
        if SalesforceWrites.handles(request):
            return self.salesforce_writes.handle(request, self)
        match = re.match(r"^/services/data/(v\d+\.\d)/(query|limits)(?:/([\w-]+))?/?$", request.path)
        if not match:
            return self._sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        version, resource, locator = match.groups()
        stream = None
        soql = request.arg("q")
        if soql:
            parsed = self.SOQL.match(soql)
            stream = parsed.group("object") if parsed else None
        elif locator and locator.rsplit("-", 1)[0] in self._soql_locators:
            stream = self._soql_locators[locator.rsplit("-", 1)[0]][0]
        used = sum(self.api_calls.values())
        limit_info = {"Sforce-Limit-Info": f"api-usage={used}/15000"}
        fault_response = self._request_faults(
            "salesforce",
            stream,
            {
                "rate_limit": lambda f: self._sf_error(
                    429,
                    "REQUEST_LIMIT_EXCEEDED",
                    "ConcurrentPerOrgLongTxn Limit exceeded.",
                    {"Retry-After": str(f.retry_after), **limit_info},
                ),
                "server_error": lambda f: self._sf_error(
                    f.status,
                    "UNKNOWN_EXCEPTION",
                    "An unexpected error occurred. Please include this ErrorId "
                    "if you contact support: 1234567890-12345 (-1234567890)",
                ),
                "auth_failure": lambda f: self._sf_error(
                    401, "INVALID_SESSION_ID", "Session expired or invalid"
                ),
            },
        )
        if fault_response:
            return fault_response
        auth = request.headers.get("authorization", "")
        if auth not in (
            f"Bearer {self.world.credentials.salesforce}",
            f"OAuth {self.world.credentials.salesforce}",
        ):
            return self._sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if resource == "limits":
            return Response(
                200,
                {
                    "DailyApiRequests": {"Max": 15000, "Remaining": max(0, 15000 - used)},
                    "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
                    "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
                },
                limit_info,
            )
        batch = 2000
        options = request.headers.get("sforce-query-options", "")
        batch_match = re.search(r"batchSize=(\d+)", options)
        if batch_match:
            batch = max(200, min(2000, int(batch_match.group(1))))
        if locator:
            return self._sf_next_page(version, locator, batch, limit_info)
        if not soql:
            return self._sf_error(400, "MALFORMED_QUERY", "A query string has to be specified")
        return self._sf_query(version, soql, batch, limit_info)

    def _sf_query(self, version: str, soql: str, batch: int, headers: dict[str, str]) -> Response:
        parsed = self.SOQL.match(soql)
        if not parsed:
            return self._sf_error(400, "MALFORMED_QUERY", f"unexpected token in query: {soql[:60]}")
        sobject = parsed.group("object")
        try:
            table = self.world.table("salesforce", sobject)
        except KeyError:
            return self._sf_error(
                400,
                "INVALID_TYPE",
                f"\n{soql[:80]}\n^\nERROR at Row:1:Column:1\nsObject type '{sobject}' is not supported.",
            )
        since: int | None = None
        until: int | None = None
        column = "modified"
        if parsed.group("where"):
            for condition in re.split(r"\s+AND\s+", parsed.group("where"), flags=re.IGNORECASE):
                cond = self.SOQL_CONDITION.match(condition)
                if not cond or cond.group(1).lower() not in self.SOQL_TIME_FIELDS:
                    return self._sf_error(
                        400, "MALFORMED_QUERY", f"unsupported condition: {condition.strip()}"
                    )
                name, op, literal = cond.groups()
                column = self.SOQL_TIME_FIELDS[name.lower()]
                try:
                    value = _parse_time(literal)
                except ValueError:
                    return self._sf_error(
                        400,
                        "MALFORMED_QUERY",
                        f"value of filter criterion for field '{name}' "
                        "must be of type dateTime and should not be enclosed in quotes",
                    )
                if op in (">=", ">"):
                    since = value + (1 if op == ">" else 0)
                elif op in ("<", "<="):
                    until = value + (1 if op == "<=" else 0)
                else:
                    since, until = value, value + 1
        fields_text = parsed.group("fields").strip()
        if re.fullmatch(r"COUNT\(\s*\)", fields_text, re.IGNORECASE):
            return Response(
                200, {"totalSize": table.count(since, until, column), "done": True, "records": []}, headers
            )
        fields = [f.strip() for f in fields_text.split(",")]
        known = set(table.record(0)) if len(table) else set()
        for name in fields:
            if known and name not in known:
                return self._sf_error(
                    400,
                    "INVALID_FIELD",
                    f"\nSELECT {fields_text[:40]}\n^\nERROR at Row:1:Column:8"
                    f"\nNo such column '{name}' on entity '{sobject}'. If you are attempting to "
                    "use a custom field, be sure to append the '__c' after the custom field name.",
                )
        listing = self.listing("salesforce", sobject)
        with self.lock:
            rows = table.window(since, until, column)
            if listing.excluded:
                rows = rows[~np.isin(rows, np.fromiter(listing.excluded, dtype=np.int64))]
        if parsed.group("limit"):
            rows = rows[: int(parsed.group("limit"))]
        locator = uuid.uuid4().hex[:15]
        with self.lock:  # query locators are shared by all request threads; keep the newest 64
            self._soql_locators[locator] = (sobject, rows, fields)
            while len(self._soql_locators) > 64:
                self._soql_locators.popitem(last=False)
        return self._sf_page(version, locator, 0, batch, headers)

    def _sf_next_page(self, version: str, locator: str, batch: int, headers: dict[str, str]) -> Response:
        query_id, _, offset = locator.rpartition("-")
        with self.lock:
            known = query_id in self._soql_locators
        if not known or not offset.isdigit():
            return self._sf_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._sf_page(version, query_id, int(offset), batch, headers)

    def _sf_page(
        self, version: str, query_id: str, offset: int, batch: int, headers: dict[str, str]
    ) -> Response:
        with self.lock:
            sobject, rows, fields = self._soql_locators[query_id]
        listing = self.listing("salesforce", sobject)
        end = offset + batch
        if listing.faults.take("salesforce", sobject, ("drop_page",)) and offset > 0:
            offset, end = offset + batch, end + batch
        page_rows = rows[offset:end].tolist()
        for fault in listing.faults.take("salesforce", sobject, ("edit_during_sync",)):
            ahead = rows[end : end + 3 * max(fault.count, 1) : 3][: max(fault.count, 1)].tolist()
            with self.lock:
                listing.table.touch(ahead, self.world.end_ts + fault.hits)
            fault.affected_ids.extend(listing.table.id_of(i) for i in ahead)
        records = []
        for record in listing.render(page_rows):
            picked = {"attributes": record["attributes"]}
            for name in fields:
                if name in record:
                    picked[name] = record[name]
            renamed = [
                f
                for f in listing.faults.list()
                if f.kind == "rename_field" and f.matches("salesforce", sobject)
            ]
            for fault in renamed:
                if fault.renamed_to in record:
                    picked[fault.renamed_to] = record[fault.renamed_to]
            records.append(picked)
        done = end >= rows.shape[0]
        body: dict[str, Any] = {"totalSize": int(rows.shape[0]), "done": done, "records": records}
        if not done:
            body["nextRecordsUrl"] = f"/services/data/{version}/query/{query_id}-{end}"
        return Response(200, body, headers)

    def _certificates(self, request: Request) -> Response:
        return self.certificate_service.handle(request, self)

    # ---------------------------------------------------------------- Stripe
    STRIPE_STREAMS = {"charges": "charge", "refunds": "refund", "balance_transactions": "balance_transaction"}

    def _stripe(self, request: Request) -> Response:
        match = re.match(r"^/v1/(charges|refunds|balance_transactions)/?$", request.path)
        stream = match.group(1) if match else None
        request_id = {"Request-Id": f"req_{uuid.uuid4().hex[:14]}"}
        fault_response = self._request_faults(
            "stripe",
            stream,
            {
                "rate_limit": lambda f: Response(
                    429,
                    {
                        "error": {
                            "code": "rate_limit",
                            "doc_url": "https://stripe.com/docs/error-codes/rate-limit",
                            "message": "Request rate limit exceeded. Learn more about rate limits here "
                            "https://stripe.com/docs/rate-limits.",
                            "type": "invalid_request_error",
                        }
                    },
                    {"Retry-After": str(f.retry_after), "Stripe-Should-Retry": "true", **request_id},
                ),
                "server_error": lambda f: Response(
                    f.status,
                    {"error": {"message": "An unknown error occurred", "type": "api_error"}},
                    {"Stripe-Should-Retry": "true", **request_id},
                ),
                "auth_failure": lambda f: self._stripe_auth_error(request_id),
            },
        )
        if fault_response:
            return fault_response
        key = request.headers.get("authorization", "")
        if key.startswith("Basic "):
            key = "Bearer " + base64.b64decode(key[6:]).decode().split(":")[0]
        if key != f"Bearer {self.world.credentials.stripe}":
            return self._stripe_auth_error(request_id, key.removeprefix("Bearer "))
        if not match:
            return Response(
                404,
                {
                    "error": {
                        "message": f"Unrecognized request URL (GET: {request.path}).",
                        "type": "invalid_request_error",
                    }
                },
                request_id,
            )
        listing = self.listing("stripe", stream)
        try:
            limit = int(request.arg("limit", "10"))
        except ValueError:
            limit = -1
        if not 1 <= limit <= 100:
            return Response(
                400,
                {
                    "error": {
                        "message": "Invalid integer: limit must be between 1 and 100",
                        "param": "limit",
                        "type": "invalid_request_error",
                    }
                },
                request_id,
            )
        try:
            since, until = _stripe_range(request)
        except ValueError as error:
            return Response(
                400,
                {"error": {"message": str(error), "param": "created", "type": "invalid_request_error"}},
                request_id,
            )
        after = None
        descending = True
        cursor_id = request.arg("starting_after") or request.arg("ending_before")
        if cursor_id:
            index = listing.table.index_of(cursor_id)
            if index is None or not 0 <= index < len(listing.table):
                param = "starting_after" if request.arg("starting_after") else "ending_before"
                return Response(
                    400,
                    {
                        "error": {
                            "code": "resource_missing",
                            "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
                            "message": f"No such {self.STRIPE_STREAMS[stream]}: '{cursor_id}'",
                            "param": param,
                            "type": "invalid_request_error",
                        }
                    },
                    request_id,
                )
            after = listing.key(index)
            descending = bool(request.arg("starting_after"))
        rows, more = listing.page(since, until, limit, after=after, descending=descending)
        if not descending:
            rows = rows[::-1]
        return Response(
            200,
            {"object": "list", "data": listing.encoded(rows), "has_more": more, "url": f"/v1/{stream}"},
            request_id,
        )

    def _stripe_auth_error(self, headers: dict[str, str], key: str = "") -> Response:
        shown = f"{key[:8]}{'*' * 4}{key[-4:]}" if len(key) > 12 else "****"
        return Response(
            401,
            {"error": {"message": f"Invalid API Key provided: {shown}", "type": "invalid_request_error"}},
            {"WWW-Authenticate": 'Basic realm="Stripe"', **headers},
        )

    # ---------------------------------------------------------------- Typeform
    def _typeform(self, request: Request) -> Response:
        match = re.match(r"^/forms/([\w-]+)/responses/?$", request.path)
        fault_response = self._request_faults(
            "typeform",
            "responses" if match else None,
            {
                "rate_limit": lambda f: Response(
                    429,
                    {"code": "RATE_LIMITED", "description": "Too many requests"},
                    {"Retry-After": str(f.retry_after)},
                ),  # body assumed
                "server_error": lambda f: Response(
                    f.status, {"code": "INTERNAL_ERROR", "description": "Internal server error"}
                ),
                "auth_failure": lambda f: self._typeform_auth_error(),
            },
        )
        if fault_response:
            return fault_response
        if request.headers.get("authorization") != f"Bearer {self.world.credentials.typeform}":
            return self._typeform_auth_error()
        if not match:
            return Response(404, {"code": "NOT_FOUND", "description": "Endpoint not found"})
        if match.group(1) != self.world.ids.typeform_form_id:
            return Response(
                404, {"code": "FORM_NOT_FOUND", "description": f"Non existing form with uid {match.group(1)}"}
            )
        listing = self.listing("typeform", "responses")
        try:
            page_size = int(request.arg("page_size", "25"))
            since = _parse_time(request.arg("since"))
            until = _parse_time(request.arg("until"))
        except ValueError as error:
            return Response(400, {"code": "VALIDATION_ERROR", "description": str(error)})
        if not 1 <= page_size <= 1000:
            return Response(
                400, {"code": "VALIDATION_ERROR", "description": "page_size must be between 1 and 1000"}
            )
        until_exclusive = None if until is None else until + 1
        after_token, before_token = request.arg("after"), request.arg("before")
        descending = (request.arg("sort") or "submitted_at,desc").endswith("desc")
        after = None
        token = after_token or before_token
        if after_token:
            descending = False
        elif before_token:
            descending = True
        if token:
            index = listing.table.index_of(token)
            if index is None or not 0 <= index < len(listing.table):
                return Response(400, {"code": "VALIDATION_ERROR", "description": "invalid token"})
            after = listing.key(index)
        rows, _ = listing.page(since, until_exclusive, page_size, after=after, descending=descending)
        total = listing.table.count(since, until_exclusive)
        return Response(
            200,
            {
                "total_items": total,
                "page_count": math.ceil(total / page_size),
                "items": listing.encoded(rows),
            },
        )

    @staticmethod
    def _typeform_auth_error() -> Response:
        return Response(
            401,
            {
                "code": "AUTHENTICATION_FAILED",
                "description": "Authentication credentials not found on the Request Headers",
            },
        )

    # ---------------------------------------------------------------- Zigpoll
    def _zigpoll(self, request: Request) -> Response:
        stream = request.path.strip("/")
        fault_response = self._request_faults(
            "zigpoll",
            stream,
            {
                "rate_limit": lambda f: Response(
                    429, {"error": "Too Many Requests"}, {"Retry-After": str(f.retry_after)}
                ),  # body assumed
                "server_error": lambda f: Response(f.status, {"error": "Internal Server Error"}),
                "auth_failure": lambda f: Response(
                    401, {"error": "Unauthorized", "message": "Invalid API key"}
                ),
            },
        )
        if fault_response:
            return fault_response
        if request.headers.get("authorization") != self.world.credentials.zigpoll:
            return Response(401, {"error": "Unauthorized", "message": "Invalid API key"})  # assumed
        if stream not in ("responses", "participants"):
            return Response(404, {"error": "Not Found"})
        if request.arg("accountId") != self.world.ids.zigpoll_account_id:
            return Response(403, {"error": "Forbidden", "message": "No access to this account"})
        if stream == "responses" and request.arg("pollId") not in (None, self.world.ids.zigpoll_poll_id):
            return Response(200, {"data": [], "hasNextPage": False, "endCursor": None})
        listing = self.listing("zigpoll", stream)
        limit = max(1, min(int(request.arg("limit", "100")), 100))
        cursor = request.arg("startCursor")
        after = None
        if cursor:
            try:
                time_part, index = _decode_cursor(cursor)
            except ValueError:
                return Response(400, {"error": "Bad Request", "message": "invalid startCursor"})
            after = (time_part, index)
        rows, more = listing.page(None, None, limit, after=after, descending=True)
        end_cursor = _encode_cursor(*listing.key(rows[-1])) if rows else None
        return Response(200, {"data": listing.encoded(rows), "hasNextPage": more, "endCursor": end_cursor})

    # ---------------------------------------------------------------- ReferralHero
    def _referralhero(self, request: Request) -> Response:
        match = re.match(r"^/api/v2/lists/(\w+)/(subscribers|bonuses)/?$", request.path)
        stream = "subscribers" if match and match.group(2) == "subscribers" else None
        reward = re.match(r"^/api/v2/lists/(\w+)/subscribers/(\w+)/rewards/(\d+)/status/?$", request.path)
        if reward:  # reward delivery (cdp_sandbox.referral_rewards)
            match, stream = reward, "reward_status"
        calls_left = max(0, 10_000 - self.api_calls.get("referralhero", 0))

        def envelope(data: Any) -> dict[str, Any]:
            return {"status": "ok", "data": data, "calls_left": calls_left, "timestamp": _now()}

        fault_response = self._request_faults(
            "referralhero",
            stream,
            {
                "rate_limit": lambda f: Response(
                    429,
                    {"status": "error", "code": "too_many_requests", "message": "API rate limit exceeded"},
                    {"Retry-After": str(f.retry_after)},
                ),  # body assumed
                "server_error": lambda f: Response(
                    f.status, {"status": "error", "message": "Internal server error"}
                ),
                "auth_failure": lambda f: self._referralhero_auth_error(),
            },
        )
        if fault_response:
            return fault_response
        token = self.world.credentials.referralhero
        if (
            request.headers.get("authorization") != f"Bearer {token}"
            and request.headers.get("x-api-key") != token
            and request.arg("api_token") != token
        ):
            return self._referralhero_auth_error()
        if not match or match.group(1) != self.world.ids.referralhero_list_uuid:
            return Response(404, {"status": "error", "code": "list_not_found", "message": "List not found"})
        if reward:
            if request.method != "POST":
                return Response(405, {"status": "error", "code": "method_not_allowed", "message": "Use POST"})
            status, body = self.reward_desk.update_status(
                reward.group(2), int(reward.group(3)), request.body, request.headers.get("idempotency-key")
            )
            return Response(status, envelope(body) if status == 200 else body)
        if match.group(2) == "bonuses":
            return Response(
                200,
                envelope(
                    [
                        {
                            "id": 100,
                            "name": "Free certificate",
                            "referrals_required": 3,
                            "reward_type": "custom",
                        },
                        {
                            "id": 101,
                            "name": "Mentor session",
                            "referrals_required": 10,
                            "reward_type": "custom",
                        },
                    ]
                ),
            )
        listing = self.listing("referralhero", "subscribers")
        per_page = 50
        try:
            page = max(1, int(request.arg("page", "1")))
        except ValueError:
            page = 1
        descending = (request.arg("sort") or "registration_desc") == "registration_desc"
        with self.lock:
            rows = listing.table.window(None, None)
            if listing.excluded:
                rows = rows[~np.isin(rows, np.fromiter(listing.excluded, dtype=np.int64))]
        if descending:
            rows = rows[::-1]
        skip = listing.faults.take("referralhero", "subscribers", ("drop_page",))
        start = (page - 1 + (1 if skip and page > 1 else 0)) * per_page
        total = int(rows.shape[0])
        return Response(
            200,
            envelope(
                {
                    "response": "subscribers_retrieved",
                    "subscribers": listing.encoded(rows[start : start + per_page].tolist()),
                    "pagination": {
                        "total_pages": max(1, math.ceil(total / per_page)),
                        "current_page": page,
                        "per_page": per_page,
                        "total_objects": total,
                    },
                }
            ),
        )

    def _galaxy(self, request: Request) -> Response:
        from cdp_sandbox import volunteers

        return volunteers.handle(self, request)

    def _zendesk(self, request: Request) -> Response:
        from cdp_sandbox import zendesk

        return zendesk.handle(self, request)

    @staticmethod
    def _referralhero_auth_error() -> Response:
        return Response(
            401, {"status": "error", "code": "unauthorized", "message": "Invalid API token"}
        )  # assumed


def _stripe_range(request: Request) -> tuple[int | None, int | None]:
    since = until = None
    for op in ("gte", "gt", "lte", "lt"):
        raw = request.arg(f"created[{op}]")
        if raw is None:
            continue
        if not raw.lstrip("-").isdigit():
            raise ValueError(f"Invalid integer: {raw}")
        value = int(raw)
        if op == "gte":
            since = value
        elif op == "gt":
            since = value + 1
        elif op == "lt":
            until = value
        else:
            until = value + 1
    plain = request.arg("created")
    if plain is not None and plain.isdigit():
        since, until = int(plain), int(plain) + 1
    return since, until


def _moodle_params(form: dict[str, list[str]]) -> dict[str, Any]:
    """Decode Moodle's PHP-style array parameters (``values[0]=1``, ``options[0][name]=x``)."""
    result: dict[str, Any] = {}
    for raw_key, values in form.items():
        value = values[-1]
        parts = re.findall(r"[^\[\]]+", raw_key)
        if not parts:
            continue
        node: Any = result
        for position, part in enumerate(parts):
            last = position == len(parts) - 1
            key: Any = int(part) if part.isdigit() else part
            if isinstance(node, dict):
                if last:
                    node[key] = value
                else:
                    node = node.setdefault(key, {})
        del node
    return {key: _listify(value) for key, value in result.items()}


def _listify(value: Any) -> Any:
    if isinstance(value, dict):
        converted = {k: _listify(v) for k, v in value.items()}
        if converted and all(isinstance(k, int) for k in converted):
            return [converted[k] for k in sorted(converted)]
        return converted
    return value


def _int_param(params: dict[str, Any], name: str) -> int:
    value = params.get(name)
    return int(value) if value not in (None, "") else 0


def utc_now() -> datetime:
    return datetime.now(UTC)
