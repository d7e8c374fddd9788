"""Bulk API 2.0 ingest jobs in the sandbox: large CRM pushes upsert through them.

Followed from the Bulk API 2.0 and Bulk API Developer Guide ("Create a Job", "Upload Job Data", "Close or Abort
a Job", "Get Job Info", "Get Job Successful Record Results", "Get Job Failed Record Results"):
``POST /services/data/vXX.X/jobs/ingest`` ``{"object", "externalIdFieldName", "contentType": "CSV",
"operation": "upsert", "lineEnding"}`` → the job info with ``"state": "Open"``; ``PUT
.../jobs/ingest/<id>/batches`` with the CSV (``Content-Type: text/csv``) → 201; ``PATCH .../jobs/ingest/<id>``
``{"state": "UploadComplete"}``; ``GET .../jobs/ingest/<id>`` until ``JobComplete`` (or ``Failed``);
``GET .../successfulResults/`` (CSV: ``sf__Id``, ``sf__Created``, then the columns sent) and
``.../failedResults/`` (``sf__Id``, ``sf__Error`` as ``CODE:message:fields``, then the columns sent). In the
CSV an empty value leaves a field as it is and ``#N/A`` empties it. Each record is upserted as the sObject
Collections upsert does (``crm_writes.SalesforceWrites.upsert``), so validation and duplicates match.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import threading
from typing import Any

import orjson

from cdp_sandbox.apis import Request, Response
from cdp_sandbox.crm_writes import INTEGRATION_USER_ID, SCHEMA, SalesforceWrites, salesforce_error

JOBS_PATH = re.compile(
    r"^/services/data/(?P<version>v\d+\.\d)/jobs/ingest(?:/(?P<job>\w+)(?:/(?P<part>batches|successfulResults|"
    r"failedResults|unprocessedrecords))?)?/?$"
)


def _value(sobject: str, name: str, text: str) -> Any:
    if text == "#N/A":
        return None
    if SCHEMA.get(sobject, {}).get("fields", {}).get(name, 0) is None:  # not text: a checkbox here
        return text.lower() == "true"
    return text


class BulkIngest:
    def __init__(self, writes: SalesforceWrites) -> None:
        self.writes = writes
        self.jobs: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    @staticmethod
    def handles(request: Request) -> bool:
        return bool(JOBS_PATH.match(request.path))

    def handle(self, request: Request) -> Response:
        match = JOBS_PATH.match(request.path)
        assert match is not None
        version, job_id, part = match.group("version"), match.group("job"), match.group("part")
        if job_id is None and request.method == "POST":
            return self._create(version, orjson.loads(request.body or b"{}"))
        job = self.jobs.get(job_id or "")
        if job is None:
            return salesforce_error(404, "NOT_FOUND", "The requested resource does not exist")
        if part == "batches" and request.method == "PUT":
            if job["state"] != "Open":
                return salesforce_error(409, "INVALIDJOBSTATE", f"Job state is {job['state']}")
            job["_data"].append(request.body.decode("utf-8"))
            return Response(201, b"", content_type="text/plain")
        if part is None and request.method == "PATCH":
            state = orjson.loads(request.body or b"{}").get("state")
            if state == "UploadComplete" and job["state"] == "Open":
                self._run(job)
            elif state == "Aborted":
                job["state"] = "Aborted"
            else:
                return salesforce_error(
                    400, "INVALIDJOBSTATE", f"cannot change a {job['state']} job to {state}"
                )
            return Response(200, self._info(job))
        if part is None and request.method == "GET":
            return Response(200, self._info(job))
        if part in ("successfulResults", "failedResults", "unprocessedrecords") and request.method == "GET":
            return Response(200, job["_results"].get(part, ""), content_type="text/csv")
        return salesforce_error(405, "METHOD_NOT_ALLOWED", f"{request.method} not allowed")

    def _create(self, version: str, body: dict[str, Any]) -> Response:
        sobject, field = body.get("object"), body.get("externalIdFieldName")
        if (
            body.get("operation") != "upsert"
            or sobject not in SCHEMA
            or field not in SCHEMA[sobject]["external_ids"]
        ):
            return salesforce_error(400, "INVALIDJOB", "the sandbox takes upsert jobs by an external id only")
        with self._lock:
            job_id = f"750SB{next(self._ids):013d}"
        self.jobs[job_id] = {
            "id": job_id, "operation": "upsert", "object": sobject, "externalIdFieldName": field,
            "createdById": INTEGRATION_USER_ID, "state": "Open", "concurrencyMode": "Parallel",
            "contentType": "CSV", "apiVersion": float(version[1:]), "lineEnding": body.get("lineEnding", "LF"),
            "columnDelimiter": "COMMA", "contentUrl": f"services/data/{version}/jobs/ingest/{job_id}/batches",
            "numberRecordsProcessed": 0, "numberRecordsFailed": 0, "_data": [], "_results": {},
        }  # fmt: skip
        return Response(200, self._info(self.jobs[job_id]))

    def _run(self, job: dict[str, Any]) -> None:
        sobject, field = job["object"], job["externalIdFieldName"]
        good, bad = io.StringIO(), io.StringIO()
        good_writer, bad_writer = csv.writer(good, lineterminator="\n"), csv.writer(bad, lineterminator="\n")
        header: list[str] | None = None
        for chunk in job["_data"]:
            reader = csv.reader(io.StringIO(chunk))
            columns = next(reader)
            if header is None:
                header = columns
                good_writer.writerow(["sf__Id", "sf__Created", *columns])
                bad_writer.writerow(["sf__Id", "sf__Error", *columns])
            for row in reader:
                values = {
                    name: _value(sobject, name, text)
                    for name, text in zip(columns, row, strict=True)
                    if text != ""
                }
                answer = self.writes.upsert(sobject, field, values.get(field), values)
                job["numberRecordsProcessed"] += 1
                if answer.get("success"):
                    good_writer.writerow([answer["id"], "true" if answer.get("created") else "false", *row])
                else:
                    job["numberRecordsFailed"] += 1
                    error = (answer.get("errors") or [{}])[0]
                    text = f"{error.get('statusCode')}:{error.get('message')}:{','.join(error.get('fields') or [])}--"
                    bad_writer.writerow(["", text, *row])
        job["_results"] = {"successfulResults": good.getvalue(), "failedResults": bad.getvalue()}
        job["state"] = "JobComplete"

    @staticmethod
    def _info(job: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in job.items() if not key.startswith("_")}
