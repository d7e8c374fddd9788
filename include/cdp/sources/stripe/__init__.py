"""Stripe connector: charges, refunds and balance transactions (fees) through list endpoints.

Vendor docs followed: https://docs.stripe.com/api/pagination (``limit`` 1..100, ``starting_after``,
``has_more``, list object ``{"object": "list", "data", "has_more", "url"}``), the ``created`` range
filter (``created[gte]``, ``created[lt]``), https://docs.stripe.com/api/errors (``{"error": {type,
code, message}}``; 401 for a bad key; 429 ``rate_limit``) and https://docs.stripe.com/rate-limits.
Lists are newest first and windows are by ``created``: Stripe objects change little after creation
(a later refund shows up as its own refund and balance transaction). Stripe has no count endpoint,
so ``count`` lists the window and counts, as Stripe's own docs suggest.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import requests

from cdp.sources.base import AuthError, ContractError, SourceSettings, Stream, check_contract, epoch
from cdp.sources.http import HttpClient

SOURCE = "stripe"
REQUIRED = {
    "charges": (
        "id",
        "object",
        "amount",
        "amount_refunded",
        "currency",
        "created",
        "status",
        "balance_transaction",
        "billing_details.email",
        "metadata",
        "refunded",
    ),
    "refunds": ("id", "object", "amount", "charge", "currency", "created", "status", "balance_transaction"),
    "balance_transactions": (
        "id",
        "object",
        "amount",
        "fee",
        "net",
        "currency",
        "created",
        "type",
        "source",
        "fee_details",
    ),
}


def _classify(response: requests.Response) -> Exception | None:
    if response.status_code == 401:
        return AuthError("stripe: invalid API key")
    if response.status_code in (400, 402, 403, 404):
        try:
            error = response.json().get("error", {})
        except ValueError:
            error = {}
        return ContractError(f"stripe: {error.get('type')} {error.get('code')}: {error.get('message')}")
    return None


class StripeClient:
    def __init__(self, settings: SourceSettings) -> None:
        headers = {"Authorization": f"Bearer {settings.credential}"}
        if settings.extra.get("stripe_version"):
            headers["Stripe-Version"] = str(settings.extra["stripe_version"])
        self.http = HttpClient(SOURCE, settings, classify=_classify, headers=headers)
        self.page_size = int(settings.extra.get("page_size", 100))

    def list_pages(
        self, resource: str, since: datetime | None, until: datetime | None
    ) -> Iterator[list[dict]]:
        params: dict[str, Any] = {"limit": self.page_size}
        if since is not None:
            params["created[gte]"] = epoch(since)
        if until is not None:
            params["created[lt]"] = epoch(until)
        while True:
            body = self.http.get_json(f"/v1/{resource}", params=params)
            if not isinstance(body, dict) or body.get("object") != "list" or "data" not in body:
                raise ContractError(f"stripe: /v1/{resource} did not answer a list object")
            yield body["data"]
            if not body.get("has_more") or not body["data"]:
                return
            params["starting_after"] = body["data"][-1]["id"]


class StripeListStream:
    source, primary_key, cursor_field = SOURCE, "id", "created"

    def __init__(self, client: StripeClient, resource: str) -> None:
        self.client, self.name = client, resource
        self.required_fields = REQUIRED[resource]

    def read(self, since: datetime | None, until: datetime | None) -> Iterator[list[dict]]:
        for page in self.client.list_pages(self.name, since, until):
            check_contract(SOURCE, self.name, page, self.required_fields)
            if page:
                yield page

    def count(self, since: datetime, until: datetime) -> int:
        return sum(len(page) for page in self.client.list_pages(self.name, since, until))


def streams(settings: SourceSettings) -> list[Stream]:
    client = StripeClient(settings)
    return [StripeListStream(client, resource) for resource in REQUIRED]
