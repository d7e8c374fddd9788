"""ReferralHero connector: campaign subscribers (referrer, clicks, sign-ups, rewards) and rewards.

Vendor docs followed: https://support.referralhero.com/integrate/rest-api/endpoints-reference
(v2: ``GET /api/v2/lists/{uuid}/subscribers`` paged 50 per ``page`` with ``sort``, answer
``{"status": "ok", "data": {"subscribers", "pagination": {total_pages, ...}}, "calls_left"}``;
``GET /api/v2/lists/{uuid}/bonuses``; ``Authorization: Bearer``) and the Subscriber object
(``referred_by``, ``people_referred``, ``created_at`` and ``last_updated_at`` as Unix seconds; the
documented fields are kept in tests/vendor_material/referralhero/). The list has no time filter, so a
window walks the whole list and keeps the subscribers whose ``last_updated_at`` falls in it: a status or
referral-count change moves ``last_updated_at``, not ``created_at``. ``unique_clicks`` and ``rewards`` are
not in the documented object and are never required. Counts walk the same way (``total_objects`` covers
the whole list, not a window). A removed subscriber simply stops being listed (the API reports no
deletions): after a read, ``listed_ids`` holds every id of the complete listing, which the sync compares
with ``core`` to find them (``sql/subscribers_removed.sql``); a listing shorter than the ``total_objects``
ReferralHero reported (a page lost on the way) leaves it None, and nothing is marked removed.
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
# Only what the documented Subscriber object has and we cannot do without: the key and the times.
SUBSCRIBER_FIELDS = ("id", "created_at", "last_updated_at")


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


def updated_at(subscriber: dict) -> datetime | None:
    """When the subscriber last changed: ``last_updated_at``, or ``created_at`` when it was never updated."""
    return parse_timestamp(subscriber.get("last_updated_at") or subscriber.get("created_at"))


class SubscribersStream:
    source, name, primary_key, cursor_field = SOURCE, "subscribers", "id", "last_updated_at"
    required_fields = SUBSCRIBER_FIELDS

    def __init__(self, client: ReferralHeroClient) -> None:
        self.client = client
        self.listed_ids: set[str] | None = None
        self._total: int | None = None

    def _pages(self) -> Iterator[list[dict]]:
        page_number = 1
        while True:
            data = self.client.get("subscribers", {"page": page_number, "sort": "registration_asc"})
            if not isinstance(data, dict) or "subscribers" not in data or "pagination" not in data:
                raise ContractError("referralhero: subscribers answer without subscribers/pagination")
            subscribers = data["subscribers"]
            check_contract(SOURCE, self.name, subscribers, self.required_fields)
            if page_number == 1:
                self._total = data["pagination"].get("total_objects")
            yield subscribers
            if page_number >= int(data["pagination"].get("total_pages", 1)) or not subscribers:
                return
            page_number += 1

    def read(self, since: datetime | None, until: datetime | None) -> Iterator[list[dict]]:
        self.listed_ids, seen = None, set()
        for subscribers in self._pages():
            seen.update(str(s["id"]) for s in subscribers)
            page = [s for s in subscribers if in_window(updated_at(s), since, until)]
            if page:
                yield page
        if isinstance(self._total, int) and len(seen) >= self._total:
            self.listed_ids = seen

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
