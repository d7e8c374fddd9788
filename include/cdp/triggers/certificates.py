"""Client of the certificate issuance service (see ``cdp_sandbox.certificates`` for the API we model).

Every request carries an ``Idempotency-Key``: the service answers a repeated key with the result it stored
the first time (HTTP 200, ``Idempotent-Replayed: true``), so a retry, ours or the HTTP client's, never
issues a second certificate. 4xx answers other than auth and rate limits are refusals of that one request
(``CertificateRefused``, with the service's error code), not failures of the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import requests

from cdp.sources.base import AuthError, ContractError, SourceSettings
from cdp.sources.http import HttpClient

SOURCE = "certificates"
PATH = "/v1/certificate-requests"


class CertificateRefused(ContractError):
    def __init__(self, status: int, code: str) -> None:
        super().__init__(f"certificates: request refused (HTTP {status}, {code})")
        self.status, self.code = status, code


def _classify(response: requests.Response) -> Exception | None:
    if response.status_code < 400 or response.status_code in (408, 425, 429) or response.status_code >= 500:
        return None
    if response.status_code in (401, 403):
        return AuthError(f"certificates: the API key was refused (HTTP {response.status_code})")
    try:
        code = str(orjson.loads(response.content)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        code = "unknown"
    return CertificateRefused(response.status_code, code)


@dataclass(frozen=True)
class IssuedRequest:
    request_id: str
    replayed: bool


class CertificateClient:
    def __init__(self, settings: SourceSettings) -> None:
        self.http = HttpClient(
            SOURCE, settings, classify=_classify, headers={"Authorization": f"Bearer {settings.credential}"}
        )

    def request_certificate(self, idempotency_key: str, body: dict[str, Any]) -> IssuedRequest:
        response = self.http.request("POST", PATH, json=body, headers={"Idempotency-Key": idempotency_key})
        answer = orjson.loads(response.content)
        if not isinstance(answer, dict) or not answer.get("id"):
            raise ContractError("certificates: a created request came back without an id")
        return IssuedRequest(str(answer["id"]), response.headers.get("Idempotent-Replayed") == "true")

    def close(self) -> None:
        self.http.close()
