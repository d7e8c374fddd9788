"""ReferralHero connector: campaign subscribers (referrer, clicks, sign-ups, rewards) and rewards.

Vendor docs followed: https://support.referralhero.com/integrate/rest-api/endpoints-reference
(v2: ``GET /api/v2/lists/{uuid}/subscribers`` paged 50 per ``page`` with ``sort``, answer
``{"status": "ok", "data": {"subscribers", "pagination": {total_pages, ...}}, "calls_left"}``;
``GET /api/v2/lists/{uuid}/bonuses``; ``Authorization: Bearer``) and the Subscriber object
(``referred_by``, ``people_referred``, ``created_at`` as Unix seconds). There is no time filter,
so a window is read oldest first (``registration_asc``) and stops once past ``until``; counts walk
the same way because ``total_objects`` covers the whole list, not a window.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import requests

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

SOURCE = "referralhero"
SUBSCRIBER_FIELDS = (
    "id",
    "name",
    "email",
    "referred",
    "referred_by",
    "people_referred",
    "unique_clicks",
    "rewards",
    "status",
    "created_at",
)


_classify_status = classify_by_status(SOURCE, "API token")


def _classify(response: requests.Response) -> Exception | None:
    error = _classify_status(response)
    if error is not None:
        return error
    if response.status_code == 200 and response.content[:30].replace(b" ", b"").startswith(
        b'{"status":"error"'
    ):
        return ContractError("referralhero: answered status=error")
    return None


class ReferralHeroClient:
    def __init__(self, settings: SourceSettings) -> None:
        try:
            self.list_uuid = str(settings.extra["list_uuid"])
        except KeyError as error:
            raise ValueError("referralhero settings need extra['list_uuid']") from error
        self.http = HttpClient(
            SOURCE, settings, classify=_classify, headers={"Authorization": f"Bearer {settings.credential}"}
        )

    def get(self, resource: str, params: dict[str, Any] | None = None) -> Any:
        body = self.http.get_json(f"/api/v2/lists/{self.list_uuid}/{resource}", params=params)
        if not isinstance(body, dict) or body.get("status") != "ok" or "data" not in body:
            raise ContractError(f"referralhero: /{resource} answer without status ok/data")
        return body["data"]


class SubscribersStream:
    source, name, primary_key, cursor_field = SOURCE, "subscribers", "id", "created_at"
    required_fields = SUBSCRIBER_FIELDS

    def __init__(self, client: ReferralHeroClient) -> None:
        self.client = client

    def read(self, since: datetime | None, until: datetime | None) -> Iterator[list[dict]]:
        page_number = 1
        while True:
            data = self.client.get("subscribers", {"page": page_number, "sort": "registration_asc"})
            if "subscribers" not in data or "pagination" not in data:
                raise ContractError("referralhero: subscribers answer without subscribers/pagination")
            subscribers = data["subscribers"]
            check_contract(SOURCE, self.name, subscribers, self.required_fields)
            page = [s for s in subscribers if in_window(parse_timestamp(s["created_at"]), since, until)]
            if page:
                yield page
            newest = parse_timestamp(subscribers[-1]["created_at"]) if subscribers else None
            if until is not None and newest is not None and newest >= until:
                return
            if page_number >= int(data["pagination"].get("total_pages", 1)) or not subscribers:
                return
            page_number += 1

    def count(self, since: datetime, until: datetime) -> int:
        return sum(len(page) for page in self.read(since, until))


class RewardsStream:
    """The campaign's reward definitions (small, read in full)."""

    source, name, primary_key, cursor_field = SOURCE, "rewards", "id", None
    required_fields = ("id", "name")

    def __init__(self, client: ReferralHeroClient) -> None:
        self.client = client

    def read(self, since: datetime | None, until: datetime | None) -> Iterator[list[dict]]:
        rewards = self.client.get("bonuses")
        check_contract(SOURCE, self.name, rewards, self.required_fields)
        if rewards:
            yield rewards

    def count(self, since: datetime, until: datetime) -> int:
        return len(self.client.get("bonuses"))


def streams(settings: SourceSettings) -> list[Stream]:
    client = ReferralHeroClient(settings)
    return [SubscribersStream(client), RewardsStream(client)]
