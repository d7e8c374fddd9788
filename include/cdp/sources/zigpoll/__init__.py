"""Zigpoll connector: survey responses and, separately, participants with their consent metadata.

Vendor docs followed: https://apidocs.zigpoll.com/reference/cursor-pagination (``GET /responses`` with
``accountId``, ``limit``, ``startCursor``; answer ``{"data", "hasNextPage", "endCursor"}``; the raw
API key in ``Authorization``). Responses come newest first and the API has no time filter, so a
window is read by walking back from the newest until a record is older than ``since`` (the pattern
Zigpoll's own "up until a certain timestamp" example uses). Consent lives apart from responses
(seed: "Zigpoll ... store[s] consent metadata separately from survey results"), so ``participants``
is its own stream. Zigpoll reports no per-window counts: ``count`` walks the same way.
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
)
from cdp.sources.http import HttpClient

SOURCE = "zigpoll"
REQUIRED = {
    "responses": ("_id", "createdAt", "pollId", "participantId", "response", "metadata"),
    "participants": ("_id", "createdAt", "email", "consent"),
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

    def _newest_first(self) -> Iterator[list[dict]]:
        params: dict[str, Any] = {"accountId": self.account_id, "limit": self.page_size}
        if self.name == "responses" and self.poll_id:
            params["pollId"] = self.poll_id
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
        for data in self._newest_first():
            page = [r for r in data if in_window(parse_timestamp(r["createdAt"]), since, until)]
            if page:
                yield page
            oldest = parse_timestamp(data[-1]["createdAt"]) if data else None
            if since is not None and oldest is not None and oldest < since:
                return

    def count(self, since: datetime, until: datetime) -> int:
        return sum(len(page) for page in self.read(since, until))


def streams(settings: SourceSettings) -> list[Stream]:
    return [ZigpollStream(settings, "responses"), ZigpollStream(settings, "participants")]
