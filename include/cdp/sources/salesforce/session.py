"""A Salesforce session that renews itself: OAuth 2.0 client credentials for a connected app.

Vendor docs followed: Salesforce Help, "OAuth 2.0 Client Credentials Flow for Server-to-Server Integration"
(``POST https://MyDomainName.my.salesforce.com/services/oauth2/token`` with ``grant_type=client_credentials``,
``client_id`` = the connected app's consumer key, ``client_secret`` = its consumer secret; the answer is
``{"access_token", "instance_url", "id", "token_type": "Bearer", "issued_at", "signature"}``, no refresh
token: a new access token is asked for the same way) and the REST API Developer Guide, "Status Codes and
Error Responses" (an expired session answers 401 ``[{"errorCode": "INVALID_SESSION_ID", ...}]``).

The access token lives until the org's session timeout. Every call made through ``SalesforceSession``
that is refused with ``INVALID_SESSION_ID`` gets a new token and is sent once more, so a run that outlives
its token (reads or the CRM push) carries on. A connection given only a token (``password``, no
``client_id`` in its extra) keeps working as before but cannot renew: its expiry is an ``AuthError``.

Why not simple-salesforce or the Airflow Salesforce provider (``SalesforceHook``)? The hook is Airflow
(the domain package must not import it: ``.importlinter``); simple-salesforce raises
``SalesforceExpiredSession`` instead of renewing, does its own requests outside our ``HttpClient`` (whose
retry, Retry-After and logging rules every connector shares and the tests drive), and would replace about
forty lines here with an adapter of the same size. The token request itself is one POST.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import requests

from cdp.sources.base import AuthError, ContractError, SourceSettings
from cdp.sources.http import Classifier, HttpClient

log = logging.getLogger(__name__)

TOKEN_PATH = "/services/oauth2/token"


def _token_refusal(response: requests.Response) -> Exception | None:
    """The token endpoint answers 400/401 ``{"error": "invalid_client", ...}`` for wrong app credentials."""
    if response.status_code in (400, 401, 403):
        try:
            error = orjson.loads(response.content).get("error", "")
        except (ValueError, AttributeError):
            error = ""
        return AuthError(
            f"salesforce: the token endpoint refused the connected app's credentials ({error or response.status_code})"
        )
    return None


class SalesforceSession:
    """One ``HttpClient`` with a bearer token that is fetched, and renewed on ``INVALID_SESSION_ID``."""

    def __init__(self, source: str, settings: SourceSettings, classify: Classifier) -> None:
        self.settings = settings
        self.client_id = str(settings.extra.get("client_id") or "")
        self.renewable = bool(self.client_id)
        self.http = HttpClient(source, settings, classify=classify)
        self.renewals = 0
        self._token: str | None = None if self.renewable else settings.credential
        if self._token is not None:
            self.http.session.headers["Authorization"] = f"Bearer {self._token}"

    def _fetch_token(self) -> None:
        auth = HttpClient("salesforce", self.settings, classify=_token_refusal)
        try:
            answer = auth.get_json(
                TOKEN_PATH,
                method="POST",
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.client_id,
                    "client_secret": self.settings.credential,
                },
            )
        finally:
            auth.close()
        if not isinstance(answer, dict) or not answer.get("access_token"):
            raise ContractError("salesforce: the token endpoint answered without an access_token")
        self._token = str(answer["access_token"])
        self.http.session.headers["Authorization"] = f"Bearer {self._token}"
        instance = answer.get("instance_url")
        if instance:
            self.http.base_url = str(instance).rstrip("/")

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        if self._token is None:
            self._fetch_token()
        try:
            return self.http.request(method, path, **kwargs)
        except AuthError:
            if not self.renewable:
                raise
            log.info("salesforce: the session expired (INVALID_SESSION_ID); renewing the access token")
            self.renewals += 1
            self._fetch_token()
            return self.http.request(method, path, **kwargs)

    def get_json(self, path: str, **kwargs: Any) -> Any:
        response = self.request("GET", path, **kwargs)
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as error:
            raise ContractError(f"salesforce: GET {path.split('?')[0]} answered non-JSON") from error

    @property
    def requests_made(self) -> int:
        return self.http.requests_made

    def close(self) -> None:
        self.http.close()
