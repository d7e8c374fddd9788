"""Stripe connector: charges, refunds and balance transactions (fees) through list endpoints.

Vendor docs followed: https://docs.stripe.com/api/pagination (``limit`` 1..100, ``starting_after``,
``has_more``, list object ``{"object": "list", "data", "has_more", "url"}``), the ``created`` range
filter (``created[gte]``, ``created[lt]``), https://docs.stripe.com/api/errors (``{"error": {type,
code, message}}``; 401 for a bad key; 429 ``rate_limit``), https://docs.stripe.com/rate-limits and
https://docs.stripe.com/api/versioning. Stripe has no count endpoint, so ``count`` lists the window and
counts, as Stripe's own docs suggest. The shapes are Stripe's OpenAPI spec (``spec3.json``; a trimmed
copy with its provenance is in tests/vendor_material/stripe/).

**Which id is a gift's.** A donation is keyed by its **charge id** (``ch_...``, or ``py_...`` for some
payment methods) unless the connection names a metadata key. The charge is the one object that exists
for every card payment in both eras (a legacy Charges API payment has no PaymentIntent; a PaymentIntent
may hold several charges, failed attempts and the one that succeeded), it is what a refund's and a
dispute's ``charge`` and a balance transaction's ``source`` point to, and it is what Stripe's Dashboard,
its payout reconciliation report (column ``charge_id``) and the usual CRM integrations quote, so finance's
ledger and the CRM can carry it without any convention of ours. The balance transaction is not a gift id
(a failed charge has none, a refund has its own). ``extra.financial_transaction_id_metadata_key`` keys
donations by that metadata value instead, for an organisation whose forms already write one; a charge
without it is then quarantined (``cdp sources check`` says whether recent charges carry it).

**Changes after creation.** Lists filter by ``created`` only, so a charge that was pending and later
succeeded, a refund that later succeeded or failed, and a dispute are seen through the Events API
(``/v1/events``, the types in ``EVENT_TYPES``): the ``events`` stream reads events by their own
``created`` and its SQL applies each object's latest state. Disputes land in ``core.dispute`` through the
balance transactions stream, which lists ``/v1/disputes`` in its window beside its own objects (so a first
read or a backfill sees them) and reads their ``charge.dispute.*`` events. Stripe keeps events about 30 days
(https://docs.stripe.com/api/events); when the cursor is older than that, the stream first re-reads the
charges, refunds and disputes created within ``REREAD_HORIZON`` before it (a dispute may come up to 120
days after its charge), so nothing that changed in the gap is missed.

**API version.** ``Stripe-Version`` is pinned to ``API_VERSION``, the version of the spec we keep, unless
``extra.stripe_version`` says otherwise; every run records the version it asked for (``ops.sync_run``).

**Why not the ``stripe`` SDK.** Paging is ten lines here, and retries, ``Retry-After``, the vendor pool and
the error classes are the shared ``HttpClient``'s, as for every other source; the SDK would bring its own
retry policy and global configuration beside it and remove none of that code.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from cdp.sources.base import AuthError, ContractError, SourceSettings, Stream, check_contract, epoch
from cdp.sources.http import HttpClient

log = logging.getLogger(__name__)

SOURCE = "stripe"
#: The API version of the spec kept in tests/vendor_material/stripe/ (``info.version``); sent by default.
API_VERSION = "2020-08-27"
#: The connection's extra key naming a metadata key that holds the gift's id (an option; default: charge id).
METADATA_KEY_OPTION = "financial_transaction_id_metadata_key"
# A missing key here means Stripe changed the shape and fails the run, so only what Stripe's OpenAPI schema
# lists as required for the object (and we read) is here; anything Stripe may leave out is the validator's.
REQUIRED = {
    "charges": ("id", "object", "amount", "amount_refunded", "currency", "created", "status", "metadata",
                "refunded"),
    "refunds": ("id", "object", "amount", "currency", "created"),
    "balance_transactions": ("id", "object", "amount", "fee", "net", "currency", "created", "type", "status",
                             "fee_details"),
}  # fmt: skip
#: The events that carry a later state of each stream's objects (``types[]`` takes exact names). A charge's
#: and a refund's event carries the object itself; a dispute's event carries the dispute, whose
#: ``balance_transactions`` (the money withdrawn and reinstated) the balance transactions stream lands.
CHANGES = {
    "charges": ("charge.succeeded", "charge.failed", "charge.pending", "charge.updated", "charge.captured",
                "charge.expired", "charge.refunded"),
    "refunds": ("charge.refund.updated",),
    "balance_transactions": ("charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed",
                             "charge.dispute.funds_withdrawn", "charge.dispute.funds_reinstated"),
}  # fmt: skip
EVENT_REQUIRED = ("id", "object", "type", "created", "data")
#: What Stripe's schema promises of a dispute (the object a dispute event carries).
DISPUTE_REQUIRED = (
    "id",
    "object",
    "amount",
    "balance_transactions",
    "charge",
    "created",
    "currency",
    "status",
)
#: Objects a stream lists beside its own resource, in the same window: the balance transactions stream lands
#: the disputes (https://docs.stripe.com/api/disputes/list, filtered by ``created``) and their money.
LISTED_WITH = {"balance_transactions": (("disputes", DISPUTE_REQUIRED),)}
#: How long Stripe keeps events (https://docs.stripe.com/api/events/list: "the last 30 days"), less a day.
EVENT_RETENTION = timedelta(days=29)
#: How far before a lost cursor the fallback re-reads objects: disputes come up to 120 days after a charge.
REREAD_HORIZON = timedelta(days=120)


class PermissionDenied(AuthError):
    """A valid key that may not read this resource (a restricted key without its read permission)."""


def _classify(response: requests.Response) -> Exception | None:
    if response.status_code == 401:
        return AuthError("stripe: invalid API key")
    if response.status_code in (400, 402, 403, 404):
        try:
            error = response.json().get("error", {})
        except ValueError:
            error = {}
        message = f"stripe: {error.get('type')} {error.get('code')}: {error.get('message')}"
        # https://docs.stripe.com/keys#limit-access: a restricted key lacking a permission is answered 403.
        return PermissionDenied(message) if response.status_code == 403 else ContractError(message)
    return None


class StripeClient:
    def __init__(self, settings: SourceSettings) -> None:
        self.api_version = str(settings.extra.get("stripe_version") or API_VERSION)
        headers = {"Authorization": f"Bearer {settings.credential}", "Stripe-Version": self.api_version}
        self.http = HttpClient(SOURCE, settings, classify=_classify, headers=headers)
        self.page_size = int(settings.extra.get("page_size", 100))

    def list_pages(
        self,
        resource: str,
        since: datetime | None,
        until: datetime | None,
        extra: dict[str, Any] | None = None,
    ) -> Iterator[list[dict]]:
        params: dict[str, Any] = {"limit": self.page_size, **(extra or {})}
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

    def __init__(self, client: StripeClient, resource: str, sql_params: dict[str, Any] | None = None) -> None:
        self.client, self.name = client, resource
        self.required_fields = REQUIRED[resource]
        self.api_version = client.api_version  # recorded with the run
        self.sql_params = sql_params or {}  # handed to the stream's SQL by the engine

    def read(self, since: datetime | None, until: datetime | None) -> Iterator[list[dict]]:
        """The objects created in the window, then the later states that events of the window carry.

        The first version of an object in what this yields is its newest state (lists answer objects as they
        are now, and events come newest first), so the stream's SQL keeps each object's first version.

        A cursor older than Stripe keeps events (in a window that reaches the present) re-lists from
        ``REREAD_HORIZON`` before it, so a change in the gap is not lost.
        """
        retained = datetime.now(UTC) - EVENT_RETENTION
        reaches_now = until is None or until > retained
        list_since = since
        if since is not None and since < retained and reaches_now:
            list_since = since - REREAD_HORIZON
            log.warning("stripe.%s: cursor %s is older than Stripe keeps events; re-listing from %s",
                        self.name, since.isoformat(), list_since.isoformat())  # fmt: skip
        for page in self.client.list_pages(self.name, list_since, until):
            check_contract(SOURCE, self.name, page, self.required_fields)
            if page:
                yield page
        # The disputes opened in the window (core.dispute), as they are now: a first read or a backfill has no
        # events, and a dispute's withdrawal names only the dispute, not the gift it takes money from.
        for resource, required in LISTED_WITH.get(self.name, ()):
            for page in self.client.list_pages(resource, list_since, until):
                check_contract(SOURCE, resource, page, required)
                if page:
                    yield page
        # A first read lists every object as it is now; a window that ended before the oldest event Stripe
        # keeps (a backfill) has no events to read, and its objects were just listed as they are now.
        if since is None or not reaches_now:
            return
        for page in self.client.list_pages("events", since, until, {"types[]": list(CHANGES[self.name])}):
            check_contract(SOURCE, "events", page, EVENT_REQUIRED)
            objects = [event["data"].get("object") for event in page if isinstance(event["data"], dict)]
            if objects:
                kinds = {obj.get("object") for obj in objects if isinstance(obj, dict)}
                check_contract(SOURCE, f"events of {self.name}", objects,
                               DISPUTE_REQUIRED if kinds == {"dispute"} else self.required_fields)  # fmt: skip
                yield objects

    def count(self, since: datetime, until: datetime) -> int:
        return sum(len(page) for page in self.client.list_pages(self.name, since, until))


def streams(settings: SourceSettings) -> list[Stream]:
    client = StripeClient(settings)
    metadata_key = settings.extra.get(METADATA_KEY_OPTION) or None
    params = {"ftid_metadata_key": str(metadata_key) if metadata_key else ""}
    return [StripeListStream(client, resource, params) for resource in REQUIRED]
