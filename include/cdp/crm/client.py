"""Salesforce REST writes: sObject Collections upsert by external id, and retrieve by id.

Vendor docs followed: REST API Developer Guide, "Upsert Records Using sObject Collections" (``PATCH
/services/data/vXX.X/composite/sobjects/<SObject>/<ExternalIdField>``, at most 200 records, each with an
``attributes.type``; ``allOrNone=false`` gives one UpsertResult ``{"id", "success", "errors", "created"}``
per record, in order) and "Get Records Using sObject Collections" (``POST .../composite/sobjects/<SObject>``
with ``{"ids", "fields"}``) and "Update Records Using sObject Collections" (``PATCH .../composite/sobjects``,
each record with its ``id``; one SaveResult ``{"id", "success", "errors"}`` per record, in order). Errors of
the request as a whole are classified as for reads (``cdp.sources.salesforce``); per-record errors are
returned to the caller, which keeps them. Calls go through ``SalesforceSession``: an expired session
(``INVALID_SESSION_ID``) gets a new token from the connected app and the call is sent again.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from cdp.sources.base import ContractError, SourceSettings
from cdp.sources.salesforce import DEFAULT_API_VERSION, SOURCE, _classify
from cdp.sources.salesforce.session import SalesforceSession

COLLECTION_LIMIT = 200
RETRIEVE_LIMIT = 2000


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SalesforceWriter:
    def __init__(self, settings: SourceSettings) -> None:
        self.version = str(settings.extra.get("api_version", DEFAULT_API_VERSION))
        # The same renewing session as the reads: a push that outlives its token gets a new one.
        self.session = SalesforceSession(SOURCE, settings, _classify)

    def upsert(self, sobject: str, external_id_field: str, records: Sequence[dict[str, Any]]) -> list[dict]:
        """Upsert ``records`` (each carrying ``external_id_field``); one result per record, in order."""
        results: list[dict] = []
        for chunk in _chunks(records, COLLECTION_LIMIT):
            body = {
                "allOrNone": False,
                "records": [{"attributes": {"type": sobject}, **record} for record in chunk],
            }
            answer = self._call(
                "PATCH",
                f"/services/data/{self.version}/composite/sobjects/{sobject}/{external_id_field}",
                body,
            )
            if not isinstance(answer, list) or len(answer) != len(chunk):
                raise ContractError(f"salesforce: upsert of {len(chunk)} {sobject} answered no result list")
            results.extend(answer)
        return results

    def update(self, sobject: str, records: Sequence[dict[str, Any]]) -> list[dict]:
        """Update ``records`` by their Salesforce ``id``; one SaveResult per record, in order."""
        results: list[dict] = []
        for chunk in _chunks(records, COLLECTION_LIMIT):
            body = {
                "allOrNone": False,
                "records": [{"attributes": {"type": sobject}, **record} for record in chunk],
            }
            answer = self._call("PATCH", f"/services/data/{self.version}/composite/sobjects", body)
            if not isinstance(answer, list) or len(answer) != len(chunk):
                raise ContractError(f"salesforce: update of {len(chunk)} {sobject} answered no result list")
            results.extend(answer)
        return results

    def retrieve(self, sobject: str, ids: Sequence[str], fields: Sequence[str]) -> list[dict | None]:
        found: list[dict | None] = []
        for chunk in _chunks(list(ids), RETRIEVE_LIMIT):
            answer = self._call(
                "POST",
                f"/services/data/{self.version}/composite/sobjects/{sobject}",
                {"ids": list(chunk), "fields": list(fields)},
            )
            if not isinstance(answer, list) or len(answer) != len(chunk):
                raise ContractError(f"salesforce: retrieve of {len(chunk)} {sobject} answered no record list")
            found.extend(answer)
        return found

    def _call(self, method: str, path: str, body: dict[str, Any]) -> Any:
        response = self.session.request(method, path, json=body)
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as error:
            raise ContractError(f"salesforce: {method} {path} answered non-JSON") from error

    def close(self) -> None:
        self.session.close()
