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

import csv
import io
from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from cdp.sources.base import ContractError, SourceSettings
from cdp.sources.salesforce import DEFAULT_API_VERSION, SOURCE, _classify
from cdp.sources.salesforce.session import SalesforceSession

COLLECTION_LIMIT = 200
RETRIEVE_LIMIT = 2000
# A push of at least this many records goes through one Bulk API 2.0 job per BULK_BATCH records instead of
# 200-record collections (one API call each): 10,000 people cost a handful of calls, not fifty.
BULK_THRESHOLD = 2000
BULK_BATCH = 10_000
BULK_DONE = ("JobComplete", "Failed", "Aborted")


def _csv_value(value: Any) -> str:
    if value is None:
        return "#N/A"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SalesforceWriter:
    def __init__(self, settings: SourceSettings) -> None:
        self.version = str(settings.extra.get("api_version", DEFAULT_API_VERSION))
        # The same renewing session as the reads: a push that outlives its token gets a new one.
        self.session = SalesforceSession(SOURCE, settings, _classify)
        self.bulk_threshold = int(settings.extra.get("bulk_threshold", BULK_THRESHOLD))
        self.bulk_poll_seconds = float(settings.extra.get("bulk_poll_seconds", 2.0))
        self.bulk_jobs = 0

    def batch_size(self, total: int) -> int:
        """How many records the push hands ``upsert`` at once: a Bulk job's worth for a large push."""
        return BULK_BATCH if total >= self.bulk_threshold else COLLECTION_LIMIT

    def upsert(self, sobject: str, external_id_field: str, records: Sequence[dict[str, Any]]) -> list[dict]:
        """Upsert ``records`` (each carrying ``external_id_field``); one result per record, in order. More
        than a collection's 200 go through a Bulk API 2.0 job."""
        if len(records) >= min(self.bulk_threshold, COLLECTION_LIMIT + 1):
            return self.bulk_upsert(sobject, external_id_field, records)
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

    def bulk_upsert(
        self, sobject: str, external_id_field: str, records: Sequence[dict[str, Any]]
    ) -> list[dict]:
        """One Bulk API 2.0 upsert job; its results turned into one UpsertResult per record, in order.

        Vendor docs: Bulk API 2.0 and Bulk API Developer Guide, "Create a Job", "Upload Job Data", "Close or
        Abort a Job", "Get Job Info", "Get Job Successful/Failed Record Results". In the CSV an empty value
        leaves a field unchanged, so a value to clear is sent as ``#N/A``; results name each record by the
        columns sent, so they are matched back by the external id.
        """
        jobs = f"/services/data/{self.version}/jobs/ingest"
        job = self._call("POST", jobs, {"object": sobject, "externalIdFieldName": external_id_field,
                                        "contentType": "CSV", "operation": "upsert", "lineEnding": "LF"})  # fmt: skip
        job_id = job.get("id") if isinstance(job, dict) else None
        if not job_id:
            raise ContractError("salesforce: the bulk job was created without an id")
        self.bulk_jobs += 1
        columns = list(dict.fromkeys(name for record in records for name in record))
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for record in records:
            writer.writerow([_csv_value(record.get(name)) if name in record else "" for name in columns])
        self.session.request(
            "PUT",
            f"{jobs}/{job_id}/batches",
            data=out.getvalue().encode(),
            headers={"Content-Type": "text/csv"},
        )
        state = self._call("PATCH", f"{jobs}/{job_id}", {"state": "UploadComplete"}).get("state")
        while state not in BULK_DONE:
            self.session.http.policy.sleep(self.bulk_poll_seconds)
            info = self.session.get_json(f"{jobs}/{job_id}")
            state = info.get("state")
            if state == "Failed":
                raise ContractError(f"salesforce: bulk job {job_id} failed ({info.get('errorMessage')})")
        if state != "JobComplete":
            raise ContractError(f"salesforce: bulk job {job_id} ended {state}")
        by_key: dict[str, dict] = {}
        for row in self._csv(f"{jobs}/{job_id}/successfulResults/"):
            by_key[row[external_id_field]] = {
                "id": row["sf__Id"], "success": True, "created": row.get("sf__Created") == "true", "errors": [],
            }  # fmt: skip
        for row in self._csv(f"{jobs}/{job_id}/failedResults/"):
            code, _, rest = row.get("sf__Error", "").partition(":")
            message, _, fields = rest.rstrip("-").rpartition(":")
            by_key[row[external_id_field]] = {
                "id": row.get("sf__Id") or None,
                "success": False,
                "errors": [
                    {
                        "statusCode": code,
                        "message": message or rest,
                        "fields": [f for f in fields.split(",") if f],
                    }
                ],
            }
        unprocessed = {
            "id": None,
            "success": False,
            "errors": [
                {"statusCode": "UNPROCESSED", "message": "not processed by the bulk job", "fields": []}
            ],
        }
        return [by_key.get(str(record.get(external_id_field)), unprocessed) for record in records]

    def _csv(self, path: str) -> list[dict[str, str]]:
        response = self.session.request("GET", path, headers={"Accept": "text/csv"})
        return list(csv.DictReader(io.StringIO(response.content.decode("utf-8"))))

    def _call(self, method: str, path: str, body: dict[str, Any]) -> Any:
        response = self.session.request(method, path, json=body)
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as error:
            raise ContractError(f"salesforce: {method} {path} answered non-JSON") from error

    def close(self) -> None:
        self.session.close()
