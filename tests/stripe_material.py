"""Stripe's own material for the tests: its OpenAPI schemas (trimmed) and its example objects.

``validate(kind, payload)`` checks a payload against the component schema of that name from Stripe's
``spec3.json`` (tests/vendor_material/stripe/, see PROVENANCE.md), translated from OpenAPI 3.0 to JSON
Schema (``nullable: true`` becomes "or null"); ``validate_list(path, body)`` checks a list endpoint's whole
answer, envelope and objects, against the 200 response that path declares.
"""

from __future__ import annotations

import copy
import json
import threading
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import jsonschema

MATERIAL = Path(__file__).resolve().parent / "vendor_material" / "stripe"
SPEC_PATH = MATERIAL / "spec3.trimmed.json"
FIXTURES_PATH = MATERIAL / "fixtures3.json"


@cache
def spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text())


def api_version() -> str:
    """The API version the kept spec describes (what the connector pins by default)."""
    return spec()["info"]["version"]


@cache
def fixtures() -> dict[str, Any]:
    return json.loads(FIXTURES_PATH.read_text())["resources"]


def example(kind: str) -> dict[str, Any]:
    """A fresh copy of Stripe's example object of that kind (``charge``, ``refund``, ...)."""
    return copy.deepcopy(fixtures()[kind])


def _json_schema(node: Any) -> Any:
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if "$ref" in out:
        out["$ref"] = out["$ref"].replace("#/components/schemas/", "#/$defs/")
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


@cache
def _defs() -> dict[str, Any]:
    return {name: _json_schema(schema) for name, schema in spec()["components"]["schemas"].items()}


def _validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({**_json_schema(schema), "$defs": _defs()})


@cache
def _object_validator(kind: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({"$ref": f"#/$defs/{kind}", "$defs": _defs()})


@cache
def _list_validator(path: str) -> jsonschema.Draft202012Validator:
    response = spec()["paths"][path]["get"]["responses"]["200"]
    return _validator(response["content"]["application/json"]["schema"])


def errors(kind: str, payload: Any) -> list[str]:
    """What in ``payload`` Stripe's schema for ``kind`` does not allow (empty: it conforms)."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in _object_validator(kind).iter_errors(payload)]  # fmt: skip


def list_errors(path: str, body: Any) -> list[str]:
    """What in a list endpoint's answer its declared 200 response does not allow."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in _list_validator(path).iter_errors(body)]  # fmt: skip


KEY = "sk_test_material"


class ConformingStripe:
    """Stripe's list protocol and nothing more: newest first, ``limit``, ``starting_after``, ``created[...]``,
    a bearer key; records the ``Stripe-Version`` each request asked for."""

    def __init__(self, objects: dict[str, list[dict[str, Any]]]) -> None:
        self.objects = objects
        self.forbidden: set[str] = (
            set()
        )  # resources a restricted key may not read (answered 403, as Stripe does)
        self.versions: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                status, body = outer.answer(self.path, dict(self.headers))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, dict]:
        self.versions.append(headers.get("Stripe-Version"))
        if headers.get("Authorization") != f"Bearer {KEY}":
            return 401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}}
        url = urlparse(path)
        name = url.path.removeprefix("/v1/")
        if name in self.forbidden:
            return 403, {
                "error": {
                    "type": "invalid_request_error",
                    "message": "The provided key 'rk_test_***"
                    f"' does not have the required permissions for this endpoint ({name}).",
                }
            }
        query = parse_qs(url.query)
        args = {key: values[0] for key, values in query.items()}
        newest_first = sorted(self.objects.get(name, []), key=lambda r: (-r["created"], r["id"]))
        rows = [r for r in newest_first
                if int(args.get("created[gte]", -1)) <= r["created"] < int(args.get("created[lt]", 2**40))]  # fmt: skip
        if name == "events" and "types[]" in query:
            rows = [r for r in rows if r["type"] in query["types[]"]]
        if "starting_after" in args:
            rows = rows[[r["id"] for r in rows].index(args["starting_after"]) + 1 :]
        limit = int(args.get("limit", 10))
        return 200, {
            "object": "list",
            "data": rows[:limit],
            "has_more": len(rows) > limit,
            "url": f"/v1/{name}",
        }

    def __enter__(self) -> ConformingStripe:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
