"""A vendor's own example payloads served over HTTP, so the real connector reads them as it would the vendor.

``ReplayServer({"/path": body or callable(query, headers) -> (status, body)})`` answers GET and POST on
127.0.0.1 and records every request (method, path, query, headers), for tests that replay tests/vendor_material/
through connector → validation → SQL → core. ``fallback(path, query, headers) -> (status, body)`` answers the
paths no route names (a vendor whose answers a test changes as it goes); without it they are a 404.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

MATERIAL = Path(__file__).resolve().parents[1] / "vendor_material"

Answer = Any | Callable[[dict[str, str], Mapping[str, str]], tuple[int, Any]]


def material(vendor: str, name: str) -> Any:
    return json.loads((MATERIAL / vendor / name).read_text())


class ReplayServer:
    def __init__(
        self,
        routes: Mapping[str, Answer],
        fallback: Callable[[str, dict[str, str], Mapping[str, str]], tuple[int, Any]] | None = None,
    ) -> None:
        self.routes = dict(routes)
        self.fallback = fallback
        self.requests: list[tuple[str, str, dict[str, str], dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.requests.append((self.command, parts.path, query, headers))
                route = server.routes.get(parts.path)
                if route is not None:
                    status, body = route(query, headers) if callable(route) else (200, route)
                elif server.fallback is not None:
                    status, body = server.fallback(parts.path, query, headers)
                else:
                    status, body = 404, {"error": "not found"}
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:  # quiet test output
                return None

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
