"""Zendesk Support connector: support tickets, with their requester, through the Incremental Ticket Export.

Vendor docs followed (developer.zendesk.com): "Incremental Exports" (API reference) and "Using the
Incremental Export API": ``GET /api/v2/incremental/tickets/cursor.json?start_time={unix}`` returns the
tickets created or changed on or after ``start_time`` (by ``generated_timestamp``), then
``?cursor={after_cursor}`` page by page until ``end_of_stream`` is true; ``per_page`` at most 1000;
``include=users`` side-loads the page's users (the requester's email lives there, behind ``requester_id``);
items changed in the last minute are left out and a ``start_time`` under a minute old is refused; 10
requests a minute, 429 with Retry-After beyond. "Search": ``GET /api/v2/search/count?query=...`` answers
``{"count": N}``, the count the count-diff compares with. Auth: HTTP basic with ``{agent email}/token``
and an API token (connection ``password``; the agent's email in ``extra["email"]``).

What each record is: the ticket object as received, plus, under ``requester``, the user object Zendesk
side-loaded for its ``requester_id`` in the same answer (None when none came), and under
``referral_field_id`` the id of the custom ticket field that names a referral (``extra["referral_field_id"]``,
a field each Zendesk account creates itself; None when the account has none, and then only the
``referral`` tag marks a ticket as being about a referral).

Assumed where we could not read it: that search takes ``updated>=`` / ``updated<`` with ISO 8601 times
(the reference shows ``>``/``<`` with dates and times), and that the search index is current for a day
that ended hours ago (the count-diff runs the next morning).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from cdp.sources.base import (
    ContractError,
    SourceSettings,
    Stream,
    check_contract,
    classify_by_status,
    epoch,
    in_window,
    iso_utc,
    parse_timestamp,
)
from cdp.sources.http import HttpClient

SOURCE = "zendesk"
EXPORT_PATH = "/api/v2/incremental/tickets/cursor.json"
TICKET_FIELDS = ("id", "created_at", "updated_at", "status", "subject", "requester_id", "tags",
                 "custom_fields")  # fmt: skip


class ZendeskClient:
    def __init__(self, settings: SourceSettings) -> None:
        try:
            agent = str(settings.extra["email"])
        except KeyError as error:
            raise ValueError(
                "zendesk settings need extra['email'] (the agent the API token belongs to)"
            ) from error
        basic = base64.b64encode(f"{agent}/token:{settings.credential}".encode()).decode()
        self.page_size = max(1, min(1000, int(settings.extra.get("page_size", 1000))))
        field_id = settings.extra.get("referral_field_id")
        self.referral_field_id = None if field_id in (None, "") else int(field_id)
        self.http = HttpClient(
            SOURCE, settings, classify=classify_by_status(SOURCE, "API token"),
            headers={"Authorization": f"Basic {basic}"},
        )  # fmt: skip

    def get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        body = self.http.get_json(path, params=params)
        if not isinstance(body, dict):
            raise ContractError(f"zendesk: {path} answered {type(body).__name__}, not an object")
        return body


class TicketsStream:
    source, name, primary_key, cursor_field = SOURCE, "tickets", "id", "updated_at"
    required_fields = TICKET_FIELDS

    def __init__(self, client: ZendeskClient) -> None:
        self.client = client

    def read(self, since: datetime | None, until: datetime | None) -> Iterator[list[dict]]:
        params: dict[str, Any] = {
            "start_time": epoch(since) if since is not None else 0,
            "include": "users",
            "per_page": self.client.page_size,
        }
        while True:
            body = self.client.get(EXPORT_PATH, params)
            if "tickets" not in body or "end_of_stream" not in body:
                raise ContractError("zendesk: ticket export answer without tickets/end_of_stream")
            tickets = body["tickets"]
            check_contract(SOURCE, self.name, tickets, self.required_fields)
            users = {user.get("id"): user for user in body.get("users") or [] if isinstance(user, dict)}
            page = [
                {**ticket, "requester": users.get(ticket["requester_id"]),
                 "referral_field_id": self.client.referral_field_id}
                for ticket in tickets
                if in_window(parse_timestamp(ticket["updated_at"]), since, until)
            ]  # fmt: skip
            if page:
                yield page
            newest = parse_timestamp(tickets[-1]["updated_at"]) if tickets else None
            if (
                body["end_of_stream"]
                or not tickets
                or (until is not None and newest is not None and newest >= until)
            ):
                return
            if not body.get("after_cursor"):
                raise ContractError("zendesk: ticket export answer with more to come but no after_cursor")
            params = {"cursor": body["after_cursor"], "include": "users", "per_page": self.client.page_size}

    def count(self, since: datetime, until: datetime) -> int:
        query = f"type:ticket updated>={iso_utc(since)} updated<{iso_utc(until)}"
        body = self.client.get("/api/v2/search/count", {"query": query})
        if not isinstance(body.get("count"), int):
            raise ContractError("zendesk: search count answer without an integer count")
        return body["count"]


def streams(settings: SourceSettings) -> list[Stream]:
    return [TicketsStream(ZendeskClient(settings))]
