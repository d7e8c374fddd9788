"""Galaxy Digital (Get Connected) connector: volunteers (users), shift sign-ups (responses) and logged hours.

Evidence followed (secondary: a client generated from Galaxy's Swagger, kept in
tests/vendor_material/galaxy/ with its provenance; Galaxy publishes no docs we could find):
- ``POST {base}/users/login`` with the API key (``key``; ``user_email``/``user_password`` when the
  account's key needs a user) answers ``{"data": {"token", "expires", "user"}}``; every read carries
  ``Authorization: Bearer <token>``. The token is fetched again when it expires or is refused once.
- ``GET {base}/users``, ``/responses``, ``/hours`` in a ``{"data": [...]}`` envelope; ``per_page`` at most
  150; ``since_id`` pages on by record id; ``since_updated`` ("YYYY-MM-DD HH:MM", UTC) for records changed
  since then; ``show_inactive=Yes`` lists inactive records too (the default hides them).
- A listing with no (more) rows answers **404**: that is an empty page, not an error.
- Records: users ``created_at``/``updated_at``; responses ``response_date_added``/``response_date_updated``
  with nested ``user``, ``need`` and ``shift`` objects; hours ``hour_date_start``, ``hour_hours``,
  ``hour_status`` (approved, inactive, pending, denied, entered), nested ``user``/``need``,
  ``created_at``/``updated_at``. Numeric ids may come as strings.

Deletions: Galaxy has no deleted-records listing. Deleting an hour record marks it ``inactive`` (so
``show_inactive=Yes`` shows it and the SQL treats it as deleted); a user or response removed for good simply
stops being listed, which this API cannot tell from "never changed" (no deletions are seen for those).

A window [since, until) is read as ``since_updated`` = since floored to the minute, paged by id, and cut at
``until`` on the record's own updated time; the sync's overlap makes the minute's rounding harmless.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import requests

from cdp.sources.base import (
    AuthError,
    ContractError,
    SourceSettings,
    Stream,
    check_contract,
    in_window,
    parse_timestamp,
    to_utc,
)
from cdp.sources.http import HttpClient

SOURCE = "galaxy"
PER_PAGE = 150


class NoResults(ContractError):
    """Galaxy's 404 for a listing with nothing (left) in it."""


def parse_galaxy_time(value: Any) -> datetime | None:
    """Galaxy's "YYYY-MM-DD HH:MM:SS" (UTC) as an aware datetime; ISO 8601 with an offset is read as given."""
    if not value:
        return None
    text = str(value)
    if " " in text and "+" not in text and not text.endswith("Z"):
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    return parse_timestamp(text)


def _classify(response: requests.Response) -> Exception | None:
    if response.status_code in (401, 403):
        return AuthError(f"galaxy: API key or session token refused (HTTP {response.status_code})")
    if response.status_code == 404:
        return NoResults("galaxy: no results (HTTP 404)")
    if response.status_code in (400, 422):
        return ContractError(f"galaxy: request rejected (HTTP {response.status_code})")
    return None


class GalaxyClient:
    def __init__(self, settings: SourceSettings) -> None:
        self.settings = settings
        self.http = HttpClient(SOURCE, settings, classify=_classify)
        self._token: str | None = None
        self._expires: datetime | None = None

    def login(self) -> str:
        """Exchange the API key for a session token (``POST /users/login``)."""
        body = {
            "key": self.settings.credential,
            "user_email": str(self.settings.extra.get("login_email", "")),
            "user_password": str(self.settings.extra.get("login_password", "")),
        }
        try:
            answer = self.http.request("POST", "/users/login", json=body).json()
        except NoResults as error:
            raise ContractError("galaxy: no login endpoint at this base URL (HTTP 404)") from error
        except ValueError as error:
            raise ContractError("galaxy: /users/login answered non-JSON") from error
        data = answer.get("data") if isinstance(answer, dict) else None
        token = data.get("token") if isinstance(data, dict) else None
        if not token:
            raise AuthError("galaxy: the login answered without a token")
        self._token = str(token)
        self._expires = parse_galaxy_time(data.get("expires"))
        self.http.session.headers["Authorization"] = f"Bearer {self._token}"
        return self._token

    def _ensure_token(self) -> None:
        if self._token is None or (self._expires is not None and self._expires <= datetime.now(UTC)):
            self.login()

    def page(self, resource: str, params: dict[str, Any]) -> list[dict]:
        """One page of a listing; Galaxy's 404 for "nothing here" is an empty page."""
        self._ensure_token()
        try:
            try:
                body = self.http.get_json(f"/{resource}", params=params)
            except AuthError:  # the session may have ended early: log in once more, then give up
                self.login()
                body = self.http.get_json(f"/{resource}", params=params)
        except NoResults:
            return []
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise ContractError(f"galaxy: /{resource} answer without a data list")
        return body["data"]


class GalaxyStream:
    source, primary_key = SOURCE, "id"
    name: str
    cursor_field: str
    required_fields: tuple[str, ...]

    def __init__(self, client: GalaxyClient) -> None:
        self.client = client

    def read(self, since: datetime | None, until: datetime | None) -> Iterator[list[dict]]:
        params: dict[str, Any] = {"per_page": PER_PAGE, "show_inactive": "Yes"}
        if since is not None:
            params["since_updated"] = to_utc(since).strftime("%Y-%m-%d %H:%M")
        last_id = 0
        while True:
            records = self.client.page(self.name, {**params, "since_id": last_id})
            check_contract(SOURCE, self.name, records, self.required_fields)
            page = [r for r in records if in_window(parse_galaxy_time(r[self.cursor_field]), since, until)]
            if page:
                yield page
            if len(records) < PER_PAGE:
                return
            last_id = max(int(r["id"]) for r in records)

    def count(self, since: datetime, until: datetime) -> int:
        return sum(len(page) for page in self.read(since, until))


# Contracts: only the key and the cursor (the generated models make every field optional); what a record
# needs to be useful is the validation's job (specs.py), which quarantines with the reason.
class UsersStream(GalaxyStream):
    name, cursor_field = "users", "updated_at"
    required_fields = ("id", "updated_at")


class ResponsesStream(GalaxyStream):
    name, cursor_field = "responses", "response_date_updated"
    required_fields = ("id", "response_date_updated")


class HoursStream(GalaxyStream):
    name, cursor_field = "hours", "updated_at"
    required_fields = ("id", "updated_at")


def streams(settings: SourceSettings) -> list[Stream]:
    client = GalaxyClient(settings)
    return [UsersStream(client), ResponsesStream(client), HoursStream(client)]
