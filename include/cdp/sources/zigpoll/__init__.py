"""Zigpoll connector: survey responses and, separately, participants with their consent metadata.

Vendor material followed: Zigpoll's OpenAPI (tests/vendor_material/zigpoll/, from JasonZigelbaum/
zigpoll-mcp-plugin) and https://apidocs.zigpoll.com/reference/cursor-pagination: ``GET /responses`` with
``accountId``, ``pollId``, ``limit`` (up to 1000), ``startCursor`` and ``createdAfter`` (a JS timestamp in
milliseconds); answer ``{"data", "hasNextPage", "endCursor"}``; the raw API key in ``Authorization``.
Responses are read from ``createdAfter`` = the window's start, every page to the last (the spec promises
no order once filtered), keeping those before ``until``. ``/participants`` has no time filter: it comes
newest first and is walked back until a record is older than ``since`` (Zigpoll's own "up until a certain
timestamp" example). Only the fields the spec has are required of a record: a participant has no email,
consent or metadata in the spec (see ``REQUIRED``). Zigpoll reports no per-window counts and no deletions:
``count`` walks the same way, and a response deleted in Zigpoll cannot be seen through this API.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from cdp.sources.base import (
    ContractError,
    SourceSettings,
    Stream,
    check_contract,
    classify_by_status,
    in_window,
    parse_timestamp,
    to_utc,
)
from cdp.sources.http import HttpClient

SOURCE = "zigpoll"
# What the OpenAPI's Response and Participant schemas have and we cannot do without: the key, the time, and a
# response's poll and participant. ``response`` and ``metadata`` may be absent (a skipped slide, no embed data).
REQUIRED = {
    "responses": ("_id", "createdAt", "pollId", "participantId"),
    "participants": ("_id", "createdAt"),
}


_classify = classify_by_status(SOURCE, "API key")


class ZigpollStream:
    source, primary_key, cursor_field = SOURCE, "_id", "createdAt"

    def __init__(self, settings: SourceSettings, resource: str) -> None:
        self.name = resource
        self.required_fields = REQUIRED[resource]
        self.account_id = str(settings.extra.get("account_id", ""))
        self.poll_id = settings.extra.get("poll_id")
        self.page_size = int(settings.extra.get("page_size", 100))
        self.http = HttpClient(
            SOURCE, settings, classify=_classify, headers={"Authorization": settings.credential}
        )

    def _pages(self, since: datetime | None = None) -> Iterator[list[dict]]:
        params: dict[str, Any] = {"accountId": self.account_id, "limit": self.page_size}
        if self.name == "responses" and self.poll_id:
            params["pollId"] = self.poll_id
        if self.name == "responses" and since is not None:
            # "created after" is strict; one millisecond earlier keeps a response made exactly at `since`.
            params["createdAfter"] = str(int(to_utc(since).timestamp() * 1000) - 1)
        while True:
            body = self.http.get_json(f"/{self.name}", params=params)
            if not isinstance(body, dict) or "data" not in body or "hasNextPage" not in body:
                raise ContractError(f"zigpoll: /{self.name} answer without data/hasNextPage")
            check_contract(SOURCE, self.name, body["data"], self.required_fields)
            yield body["data"]
            if not body["hasNextPage"] or not body["data"]:
                return
            params["startCursor"] = body["endCursor"]

    def read(self, since: datetime | None, until: datetime | None) -> Iterator[list[dict]]:
        for data in self._pages(since):
            page = [r for r in data if in_window(parse_timestamp(r["createdAt"]), since, until)]
            if page:
                yield page
            if self.name == "responses":
                continue  # filtered by the API: every page is in or after the window
            oldest = parse_timestamp(data[-1]["createdAt"]) if data else None
            if since is not None and oldest is not None and oldest < since:
                return

    def count(self, since: datetime, until: datetime) -> int:
        return sum(len(page) for page in self.read(since, until))


def streams(settings: SourceSettings) -> list[Stream]:
    return [ZigpollStream(settings, "responses"), ZigpollStream(settings, "participants")]
