"""The Salesforce REST API Developer Guide's own query answers, replayed through the real connector, validation,
SQL and ``core`` (tests/vendor_material/salesforce/rest/, PROVENANCE.md there).

A minimal server follows the guide's paging and nothing of ours: ``queryAll.response.json`` is the first page as
printed (``done: false``, its ``nextRecordsUrl``, one Contact), and following that URL answers the guide's
"deleted items" example, ``queryAll.deleted.response.json`` (``done: true``, the last page). What is varied, and
why: Salesforce answers every field a query selects (null when empty), and the guide's query selected only
``Name``, so each record is completed with the fields our query selects, null, except the compound ``Name``
split into ``FirstName``/``LastName`` and a ``SystemModstamp``; the deleted-items example's record (a custom
object in the guide) is answered as a Contact, with ``IsDeleted`` true, as queryAll marks a deleted record.
"""

from __future__ import annotations

import copy
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import psycopg

from cdp.sources import registry, salesforce
from cdp.sources.base import SourceSettings
from cdp.sync.engine import sync_stream
from cdp.sync.specs import spec_for
from cdp.warehouse import Actor

REST = Path(__file__).resolve().parents[1] / "vendor_material" / "salesforce" / "rest"
ACTOR = Actor("pytest")
TOKEN = "00Dguide!static-session"


def rest(name: str) -> Any:
    return json.loads((REST / name).read_text())


def _completed(record: dict[str, Any], sobject: str, record_id: str, modstamp: str) -> dict[str, Any]:
    """A guide record as Salesforce answers our query: every selected field present, null when empty."""
    out = {name: None for name in salesforce.OBJECT_FIELDS[sobject]}
    first, _, last = str(record["Name"]).rpartition(" ")
    out.update(Id=record_id, FirstName=first or None, LastName=last, IsDeleted=False, HasOptedOutOfEmail=False,
               SystemModstamp=modstamp, CreatedDate=modstamp, LastModifiedDate=modstamp)  # fmt: skip
    version = record["attributes"]["url"].split("/")[3]
    return {"attributes": {"type": sobject, "url": f"/services/data/{version}/sobjects/{sobject}/{record_id}"},
            **out}  # fmt: skip


class GuideSalesforce:
    """Answers the describe of Contact (in the shape of the guide's describe, with the fields our query wants),
    and ``/queryAll`` with the guide's first page, whose ``nextRecordsUrl`` answers the guide's last page."""

    def __init__(self, first: dict[str, Any], last: dict[str, Any]) -> None:
        self.first, self.last = first, last
        self.queries: list[str] = []
        describe = rest("describe.Opportunity.trimmed.json")
        template = describe["fields"][1]
        self.describe = describe | {
            "name": "Contact", "label": "Contact",
            "fields": [template | {"name": name, "label": name} for name in salesforce.OBJECT_FIELDS["Contact"]],
        }  # fmt: skip
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                status, body = outer.answer(self.path, self.headers.get("Authorization"))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def answer(self, path: str, authorization: str | None) -> tuple[int, Any]:
        if authorization != f"Bearer {TOKEN}":
            return 401, rest("error.INVALID_SESSION_ID.json")
        url = urlparse(path)
        if url.path.endswith("/sobjects/Contact/describe"):
            return 200, self.describe
        if url.path.endswith("/queryAll"):
            self.queries.append(parse_qs(url.query)["q"][0])
            return 200, self.first
        if url.path == self.first["nextRecordsUrl"]:
            return 200, self.last
        return 404, rest("error.NOT_FOUND.json")

    def __enter__(self) -> GuideSalesforce:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_the_guides_query_answers_land_in_core_and_a_deleted_record_is_an_audited_removal(
    warehouse_url: str,
) -> None:
    first, last = rest("queryAll.response.json"), rest("queryAll.deleted.response.json")
    kept_id = first["records"][0]["Id"]  # 003RO0000035WQgYAM, the guide's Contact
    deleted_id = "003" + last["records"][0]["attributes"]["url"].rsplit("/", 1)[1][3:]
    served_first = copy.deepcopy(first)
    served_first["records"] = [
        _completed(first["records"][0], "Contact", kept_id, "2024-05-01T10:00:00.000+0000")
    ]
    served_last = copy.deepcopy(last)
    served_last["records"] = [
        _completed(last["records"][0], "Contact", deleted_id, "2024-05-02T10:00:00.000+0000")
    ]
    served_last["records"][0]["IsDeleted"] = True
    assert set(served_first) == set(first) and set(served_last) == set(
        last
    )  # the guide's envelopes as printed

    with GuideSalesforce(served_first, served_last) as server:
        settings = SourceSettings(server.url, TOKEN, {"api_version": "v61.0", "default_currency": "USD"})
        stream = registry.stream("salesforce", "Contact", settings)
        sync_stream(warehouse_url, stream, spec_for("salesforce", "Contact"), actor=ACTOR, run_id="guide",
                    interval_end=datetime(2024, 6, 1, tzinfo=UTC))  # fmt: skip
    assert len(server.queries) == 1 and server.queries[0].startswith("SELECT Id, ")

    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("SELECT source_record_id, reason FROM ops.quarantine").fetchall() == []
        person = conn.execute(
            "SELECT p.given_name, p.family_name, s.deleted_at IS NULL FROM core.person_source_id s"
            " JOIN core.person p ON p.person_id = s.person_id"
            " WHERE s.source = 'salesforce.contact' AND s.source_record_id = %s",
            (kept_id,),
        ).fetchone()
        removal = conn.execute(
            "SELECT sobject, kind, master_record_id FROM core.crm_record_removal WHERE source_record_id = %s",
            (deleted_id,),
        ).fetchone()
    assert person == ("John", "Smith", True)  # the guide's "John Smith"
    assert removal == ("Contact", "deleted", None)
