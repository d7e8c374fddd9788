"""Galaxy Digital (Get Connected) connector: volunteers (users), shift sign-ups (responses) and logged hours.

Vendor API followed: ``GET {base}/api/users``, ``/api/responses``, ``/api/hours`` with a bearer API key;
``per_page`` (at most 150), ``since_id`` to page on by record id (the last id of the previous page),
``since_updated`` ("YYYY-MM-DD HH:MM", UTC) for records changed since then. The answer's records are in
``data`` (the envelope is our reading; see ``cdp_sandbox.volunteers``). A window [since, until) is read as
``since_updated`` = since floored to the minute, paged by id, and cut at ``until`` on the record's own
updated time; the sync's overlap makes the minute's rounding harmless.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from cdp.sources.base import (
    ContractError,
    SourceSettings,
    Stream,
    check_contract,
    classify_by_status,
    in_window,
    to_utc,
)
from cdp.sources.http import HttpClient

SOURCE = "galaxy"
PER_PAGE = 150


def parse_galaxy_time(value: Any) -> datetime | None:
    """Galaxy's "YYYY-MM-DD HH:MM:SS" (UTC) as an aware datetime."""
    if not value:
        return None
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


class GalaxyClient:
    def __init__(self, settings: SourceSettings) -> None:
        self.http = HttpClient(
            SOURCE,
            settings,
            classify=classify_by_status(SOURCE, "API key"),
            headers={"Authorization": f"Bearer {settings.credential}", "Accept": "application/json"},
        )

    def page(self, resource: str, params: dict[str, Any]) -> list[dict]:
        body = self.http.get_json(f"/api/{resource}", params=params)
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise ContractError(f"galaxy: /api/{resource} answer without a data list")
        return body["data"]


class GalaxyStream:
    source, primary_key = SOURCE, "id"
    name: str
    cursor_field: str
    required_fields: tuple[str, ...]

    def __init__(self, client: GalaxyClient) -> None:
        self.client = client

    def read(self, since: datetime | None, until: datetime | None) -> Iterator[list[dict]]:
        params: dict[str, Any] = {"per_page": PER_PAGE}
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
            last_id = int(records[-1]["id"])

    def count(self, since: datetime, until: datetime) -> int:
        return sum(len(page) for page in self.read(since, until))


class UsersStream(GalaxyStream):
    name, cursor_field = "users", "user_updated"
    required_fields = (
        "id",
        "user_fname",
        "user_lname",
        "user_email",
        "user_status",
        "user_created",
        "user_updated",
    )


class ResponsesStream(GalaxyStream):
    name, cursor_field = "responses", "response_updated"
    required_fields = ("id", "user_id", "need_id", "shift_id", "shift_start", "shift_end", "response_status",
                       "response_updated")  # fmt: skip


class HoursStream(GalaxyStream):
    name, cursor_field = "hours", "hour_updated"
    required_fields = ("id", "user_id", "hour_date", "hour_hours", "hour_status", "hour_updated")


def streams(settings: SourceSettings) -> list[Stream]:
    client = GalaxyClient(settings)
    return [UsersStream(client), ResponsesStream(client), HoursStream(client)]
