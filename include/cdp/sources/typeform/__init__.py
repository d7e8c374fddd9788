"""Typeform connector: form responses through the Responses API.

Vendor docs followed: https://www.typeform.com/developers/responses/reference/retrieve-responses/
(``GET /forms/{form_id}/responses``; ``page_size`` up to 1000; ``since``/``until`` on submit time;
``after`` token to walk forward without repeats; ``sort=submitted_at,asc``; ``total_items``) and the
error shape ``{"code", "description"}`` (401 ``AUTHENTICATION_FAILED``). ``since`` and ``until`` are
inclusive at second precision, so a window [since, until) is asked as since .. until - 1 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from cdp.sources.base import (
    ContractError,
    SourceSettings,
    Stream,
    check_contract,
    classify_by_status,
    in_window,
    iso_utc,
    parse_timestamp,
)
from cdp.sources.http import HttpClient

SOURCE = "typeform"
# What Typeform's own examples always show on a response (tests/vendor_material/typeform/): the Responses API
# example ("JSON response explanation") has no response_id and no hidden, the webhook example no response_id
# and no answers in some forms. The token is the response's id ("token: ID of the response").
REQUIRED = ("token", "landed_at", "submitted_at")


def as_response(record: dict[str, Any]) -> dict[str, Any]:
    """One shape for a response read by polling or delivered by webhook: ``response_id`` and ``landing_id``
    default to the token (ASSUMED: Typeform's newer answers carry response_id equal to the token; the
    documented examples either omit it or show it equal), ``hidden`` and ``answers`` to empty (a form with
    no hidden fields, a response that answered nothing)."""
    response = dict(record)
    token = response.get("token")
    response.setdefault("response_id", token)
    response.setdefault("landing_id", token)
    response.setdefault("hidden", {})
    response.setdefault("answers", [])
    return response


_classify = classify_by_status(SOURCE, "token")
# How long a new response may take to appear in the Responses API (ASSUMED: Typeform says only that the
# newest responses may be missing; third-party guides say about 30 minutes).
LISTING_SETTLE = timedelta(hours=1)


class TypeformResponsesStream:
    source, name, primary_key, cursor_field = SOURCE, "responses", "response_id", "submitted_at"
    required_fields = REQUIRED

    def __init__(self, settings: SourceSettings) -> None:
        try:
            self.form_id = str(settings.extra["form_id"])
        except KeyError as error:
            raise ValueError("typeform settings need extra['form_id']") from error
        self.page_size = int(settings.extra.get("page_size", 1000))
        # A periodic id reconciliation finds responses deleted in Typeform (``_list_every_response``).
        self.reconcile_deletions = bool(settings.extra.get("reconcile_deletions", True))
        self.listed_ids: set[str] | None = None
        self.sql_params: dict[str, str] = {}
        self.http = HttpClient(
            SOURCE, settings, classify=_classify, headers={"Authorization": f"Bearer {settings.credential}"}
        )

    def _window_params(self, since: datetime | None, until: datetime | None) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if since is not None:
            params["since"] = iso_utc(since)
        if until is not None:
            params["until"] = iso_utc(until - timedelta(seconds=1))
        return params

    def _get(self, params: dict[str, Any]) -> dict[str, Any]:
        body = self.http.get_json(f"/forms/{self.form_id}/responses", params=params)
        if not isinstance(body, dict) or "items" not in body or "total_items" not in body:
            raise ContractError("typeform: responses answer without items/total_items")
        return body

    def _walk(self, params: dict[str, Any]) -> Iterator[tuple[list[dict], int]]:
        """Every page of the answer to ``params`` (sorted on the first page, then by ``after`` token), with
        the ``total_items`` each page reports."""
        params = {**params, "page_size": self.page_size, "sort": "submitted_at,asc"}
        while True:
            body = self._get(params)
            items = body["items"]
            check_contract(SOURCE, self.name, items, self.required_fields)
            yield items, int(body["total_items"])
            if len(items) < self.page_size:
                return
            params.pop("sort", None)
            params["after"] = items[-1]["token"]

    def read(self, since: datetime | None, until: datetime | None) -> Iterator[list[dict]]:
        self.listed_ids, self.sql_params = None, {}
        for items, _ in self._walk(self._window_params(since, until)):
            page = [
                as_response(r) for r in items if in_window(parse_timestamp(r["submitted_at"]), since, until)
            ]
            if page:
                yield page
        if self.reconcile_deletions:
            self._list_every_response()

    def _list_every_response(self) -> None:
        """Typeform shows no deleted responses (no feed, no flag): a response deleted in Typeform simply stops
        being listed. So after each read every response id of the form is listed (ceil(n / page_size)
        requests) and kept in ``listed_ids`` when the walk saw as many as Typeform's ``total_items``; the
        shared sql/sync/_survey_responses_removed.sql marks the responses core holds but Typeform no longer
        lists. Only responses submitted an hour before the walk began can be marked: the Responses API may
        not list the newest ones yet (a webhook can deliver them first)."""
        began = datetime.now(UTC)
        seen: set[str] = set()
        total: int | None = None
        for items, reported in self._walk({}):
            total = reported if total is None else total
            seen.update(str(as_response(r)["response_id"]) for r in items)
        if total is not None and len(seen) >= total:
            self.listed_ids = seen
            self.sql_params = {
                "listing_survey_id": self.form_id,
                "listing_settled_before": iso_utc(began - LISTING_SETTLE),
            }

    def count(self, since: datetime, until: datetime) -> int:
        return int(self._get({**self._window_params(since, until), "page_size": 1})["total_items"])


def streams(settings: SourceSettings) -> list[Stream]:
    return [TypeformResponsesStream(settings)]
