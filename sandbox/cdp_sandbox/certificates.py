"""The sandbox's certificate issuance service (``/certificates``): where course completions ask for a
certificate.

No vendor is chosen yet, so this is our model of a typical issuance API (marked "assumed"), with the
idempotency contract of Stripe's API, which most such services copy (https://docs.stripe.com/api/
idempotent_requests): ``POST /v1/certificate-requests`` with ``Authorization: Bearer <key>`` and an
``Idempotency-Key`` header, JSON body ``{"recipient": {"reference", "name"}, "course": {"reference",
"title"}, "completed_on", "metadata"}``. The first request with a key creates a request (201); the same
key with the same body answers the stored result again (200, header ``Idempotent-Replayed: true``); the
same key with another body is refused (422 ``idempotency_error``); without a key the request is refused
(400), so a retry can never issue twice. ``GET /v1/certificate-requests`` lists them (``limit``,
``starting_after``). Errors: ``{"error": {"type", "code", "message"}}``.

Faults (``source="certificates"``, stream ``requests``): the usual request faults, and ``lose_response``:
the request is applied, then answered 502 as if the connection dropped on the way back.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from typing import Any

import orjson

from cdp.sources.base import SourceSettings
from cdp_sandbox.apis import Request, Response, VendorApis
from cdp_sandbox.core import WorldCore

STREAM = "requests"
PATH = "/v1/certificate-requests"


def _error(status: int, kind: str, code: str, message: str) -> Response:
    return Response(status, {"error": {"type": kind, "code": code, "message": message}})


class CertificateService:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: dict[str, dict[str, Any]] = {}  # id -> request, in creation order
        self._by_key: dict[str, tuple[str, str]] = {}  # idempotency key -> (body hash, request id)
        self._ids = itertools.count(1)
        self.posts = 0

    def handle(self, request: Request, apis: VendorApis) -> Response:
        fault_response = apis.request_faults(
            "certificates",
            STREAM,
            {
                "rate_limit": lambda f: Response(
                    429,
                    {
                        "error": {
                            "type": "rate_limit_error",
                            "code": "rate_limit",
                            "message": "Too many requests",
                        }
                    },
                    {"Retry-After": str(f.retry_after)},
                ),
                "server_error": lambda f: _error(f.status, "api_error", "internal", "Something went wrong"),
                "auth_failure": lambda f: _error(
                    401, "authentication_error", "invalid_api_key", "Invalid key"
                ),
            },
        )
        if fault_response:
            return fault_response
        if request.headers.get("authorization") != f"Bearer {apis.world.credentials.certificates}":
            return _error(401, "authentication_error", "invalid_api_key", "Invalid API key provided")
        if request.path.rstrip("/") != PATH:
            return _error(
                404, "invalid_request_error", "resource_missing", f"Unrecognized path {request.path}"
            )
        if request.method == "GET":
            return self._list(request)
        if request.method != "POST":
            return _error(405, "invalid_request_error", "method_not_allowed", "Use GET or POST")
        response = self._create(request)
        if apis.faults.take("certificates", STREAM, ("lose_response",)):
            return Response(502, b"<html><body>502 Bad Gateway</body></html>", content_type="text/html")
        return response

    def _create(self, request: Request) -> Response:
        key = request.headers.get("idempotency-key", "")
        if not key:
            return _error(
                400, "invalid_request_error", "idempotency_key_required", "Idempotency-Key is required"
            )
        try:
            body = orjson.loads(request.body or b"{}")
        except orjson.JSONDecodeError:
            return _error(400, "invalid_request_error", "invalid_json", "The body is not valid JSON")
        recipient, course = body.get("recipient") or {}, body.get("course") or {}
        missing = [
            name
            for name, value in (
                ("recipient.reference", recipient.get("reference")),
                ("recipient.name", recipient.get("name")),
                ("course.reference", course.get("reference")),
                ("completed_on", body.get("completed_on")),
            )
            if not value
        ]
        if missing:
            return _error(400, "invalid_request_error", "parameter_missing", f"Missing: {', '.join(missing)}")
        digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
        with self.lock:
            self.posts += 1
            if key in self._by_key:
                known_digest, request_id = self._by_key[key]
                if known_digest != digest:
                    return _error(
                        422,
                        "idempotency_error",
                        "idempotency_key_in_use",
                        "Keys for idempotent requests can only be used with the same parameters they were "
                        "first used with.",
                    )
                return Response(200, self.requests[request_id], {"Idempotent-Replayed": "true"})
            request_id = f"crt_{next(self._ids):010d}"
            created = {
                "id": request_id,
                "object": "certificate_request",
                "status": "pending",
                "created": int(time.time()),
                "idempotency_key": key,
                **body,
            }
            self.requests[request_id] = created
            self._by_key[key] = (digest, request_id)
            return Response(201, created)

    def _list(self, request: Request) -> Response:
        limit = max(1, min(int(request.arg("limit") or 100), 100))
        after = request.arg("starting_after")
        with self.lock:
            ids = list(self.requests)
            start = ids.index(after) + 1 if after in self.requests else 0
            page = [self.requests[i] for i in ids[start : start + limit]]
            more = start + limit < len(ids)
        return Response(200, {"object": "list", "data": page, "has_more": more})


CREDENTIAL = "cert-sandbox-api-key-0001"


def settings(world: WorldCore, base_url: str, ledger_folder: object = None) -> SourceSettings:
    return SourceSettings(f"{base_url}/certificates", world.credentials.for_source("certificates"), {})


class CertificateApi:
    """The issuance service of one running sandbox (``service`` keeps what was requested)."""

    def __init__(self, apis: VendorApis) -> None:
        self.apis = apis
        self.service = CertificateService()

    def __call__(self, request: Request) -> Response:
        return self.service.handle(request, self.apis)
