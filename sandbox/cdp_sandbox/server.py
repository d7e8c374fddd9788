"""The sandbox HTTP server: every vendor API on one local port, plus faults, truth and a Slack receiver.

    world = World(seed=7, learners=1000)
    with SandboxServer(world) as sandbox:                 # port 0: a free port
        settings = sandbox.settings("stripe")             # SourceSettings for the connector
        sandbox.faults.add(Fault("rate_limit", "stripe", "charges", times=2, retry_after=1))
        ...
        sandbox.slack_messages                            # what the alerting posted

Mounts: one per vendor with an API in ``cdp_sandbox.vendors`` (``/moodle``, ``/salesforce``, ``/stripe``,
``/typeform``, ``/zigpoll``, ``/referralhero``, ``/galaxy``, ``/zendesk``, ``/certificates``; each vendor's
module says what it speaks), ``POST /slack/...`` (incoming webhooks) and the admin API:
``GET /_sandbox/health``, ``GET|POST|DELETE /_sandbox/faults`` (POST a Fault as JSON; DELETE clears,
``DELETE /_sandbox/faults/{id}`` removes one), ``GET|DELETE /_sandbox/slack``,
``GET /_sandbox/truth/count?source=&stream=&since=&until=``, ``POST /_sandbox/salesforce/staff-edit``
(a staff edit in the CRM, see ``cdp_sandbox.crm_writes``), ``GET|POST /_sandbox/salesforce/org`` (the kind of
org: ``multi_currency``, ``currency``, ``session_seconds``, ``missing`` objects and fields, and
``delete_contacts`` ``{id: master id or null}``, ``delete_opportunities`` ``[id, ...]``; see
``cdp_sandbox.salesforce_org``). ``/certificates`` is
the certificate issuance service (``cdp_sandbox.certificates``).

Command line (wired to ``cdp sandbox serve``): ``--host --port --seed --learners --fault SPEC
--ledger-folder PATH``; a fault SPEC is ``source[:stream]:kind[:key=value,...]``. The served world is dated
relative to ``--today`` (default: today, UTC, when the server starts): the ``--history-days`` before it hold
the data, so yesterday, last month and the recent past all have records; ``--fixed-past`` serves the fixed
2023-2024 world instead. ``--live`` lets the clock run: records dated after the reference day's midnight
appear as their time comes (new learners, enrolments, completions, gifts, surveys, tickets), the same ones
for the same seed and day. ``--planted-faults`` adds the seed's story (``cdp_sandbox.faults.planted``).
``--registration-webhook-url URL`` makes the registration form send its submissions, signed, to the webhook
intake as they happen (``cdp_sandbox.registration``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cdp.sources.base import SourceSettings
from cdp_sandbox import faults as fault_stories
from cdp_sandbox import registration
from cdp_sandbox.apis import Request, Response, VendorApis
from cdp_sandbox.faults import Fault, FaultBook
from cdp_sandbox.formats import iso_z, to_epoch
from cdp_sandbox.generator import World
from cdp_sandbox.vendors import VENDORS, api_factories

log = logging.getLogger(__name__)

#: The vendor mounts: every registered vendor with an API (cdp_sandbox.vendors), in registry order.
SOURCES = tuple(api_factories())
#: Where the sandbox receives Slack incoming-webhook posts (the `slack_alerts` connection of `make run`).
SLACK_WEBHOOK_PATH = "/slack/services/T0SANDBOX/B0SANDBOX/sandboxwebhooksecret"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as separate writes; without NODELAY, Nagle plus delayed ACKs add ~40 ms each.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("sandbox %s", format % args)

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            self.command,
            parts.path,
            parse_qs(parts.query, keep_blank_values=True),
            {k.lower(): v for k, v in self.headers.items()},
            body,
        )
        try:
            response = self.server.sandbox.route(request)
        except Exception as error:  # the sandbox must answer, even when it has a bug
            log.exception("sandbox failed on %s %s", self.command, parts.path)
            response = Response(500, {"error": f"sandbox bug: {type(error).__name__}: {error}"})
        payload = response.encoded()
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", f"{response.content_type}; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. its timeout)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _dispatch


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    sandbox: SandboxServer


class SandboxServer:
    """The running sandbox; a context manager for tests, `serve_forever` for a long-running process."""

    def __init__(
        self,
        world: World,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ledger_folder: str | Path | None = None,
        registration_webhook_url: str | None = None,
        registration_webhook_secret: str = registration.CREDENTIAL,
        registration_webhook_interval: float = 60.0,
    ) -> None:
        self.world = world
        self.faults = FaultBook()
        self.apis = VendorApis(world, self.faults, api_factories())
        #: The registration form's webhook sender (None: the form sends nothing on its own).
        self.registration_sender = (
            registration.WebhookSender(
                world, registration_webhook_url, registration_webhook_secret, registration_webhook_interval
            )
            if registration_webhook_url
            else None
        )
        self.apis.registration_sender = self.registration_sender  # type: ignore[attr-defined]
        self.slack_messages: list[dict[str, Any]] = []
        # Finance's ledger drop is a folder, not an API: without one given, the sandbox keeps its own for
        # its lifetime, so every source, the ledger included, is there in every use of it.
        self._own_ledger_folder = ledger_folder is None
        self.ledger_folder = (
            Path(ledger_folder) if ledger_folder else Path(tempfile.mkdtemp(prefix="cdp-ledger-drop-"))
        )
        self._httpd = _Server((host, port), _Handler)
        self._httpd.sandbox = self
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, source: str) -> str:
        """The base URL a connector for `source` is configured with (the vendor's host in production)."""
        return f"{self.base_url}/{source}"

    @property
    def slack_webhook_url(self) -> str:
        return self.base_url + SLACK_WEBHOOK_PATH

    def settings(self, source: str, **extra: Any) -> SourceSettings:
        """Connection settings that make the real connector talk to this sandbox."""
        return sandbox_settings(self.world, self.base_url, source, self.ledger_folder, **extra)

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> SandboxServer:
        if self.ledger_folder:
            for month in self.world.ledger_months():
                self.world.write_ledger_drop(self.ledger_folder, month)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="sandbox-http", daemon=True
        )
        self._thread.start()
        if self.registration_sender:
            self.registration_sender.start()
        return self

    def stop(self) -> None:
        if self.registration_sender:
            self.registration_sender.stop()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)
        if self._own_ledger_folder:
            shutil.rmtree(self.ledger_folder, ignore_errors=True)

    def serve_forever(self) -> None:
        if self.ledger_folder:
            for month in self.world.ledger_months():
                self.world.write_ledger_drop(self.ledger_folder, month)
        if self.registration_sender:
            self.registration_sender.start()
        try:
            self._httpd.serve_forever()
        finally:
            if self.registration_sender:
                self.registration_sender.stop()
            self._httpd.server_close()
            if self._own_ledger_folder:
                shutil.rmtree(self.ledger_folder, ignore_errors=True)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- routing
    def route(self, request: Request) -> Response:
        head, _, rest = request.path.lstrip("/").partition("/")
        if head in SOURCES:
            request.path = "/" + rest
            return self.apis.handle(head, request)
        if head == "slack":
            return self._slack(request)
        if head == "_sandbox":
            return self._admin(request, rest)
        return Response(
            404, {"error": f"no sandbox mount {head!r}", "mounts": [*SOURCES, "slack", "_sandbox"]}
        )

    def _slack(self, request: Request) -> Response:
        if request.method != "POST":
            return Response(405, b"invalid_method", content_type="text/plain")
        try:
            payload = json.loads(request.body or b"{}")
        except ValueError:
            return Response(400, b"invalid_payload", content_type="text/plain")
        if not isinstance(payload, dict) or not (payload.get("text") or payload.get("blocks")):
            return Response(400, b"no_text", content_type="text/plain")
        self.slack_messages.append({"path": request.path, "received_at": time.time(), "payload": payload})
        return Response(200, b"ok", content_type="text/plain")

    def _admin(self, request: Request, rest: str) -> Response:
        if rest == "health":
            world = self.world
            horizon = world.horizon()
            return Response(
                200,
                {
                    "status": "ok",
                    "learners": world.learners,
                    "seed": world.seed,
                    "today": world.today.isoformat() if world.today else None,
                    "live": world.live,
                    "served_until": iso_z(horizon) if horizon is not None else iso_z(world.end_ts),
                },
            )
        if rest.startswith("faults"):
            fault_id = rest.partition("/")[2]
            if request.method == "POST":
                try:
                    spec = json.loads(request.body or b"{}")
                    fault = self.faults.add(Fault(**spec))
                except (TypeError, ValueError) as error:
                    return Response(400, {"error": str(error)})
                return Response(201, fault.as_dict())
            if request.method == "DELETE":
                if fault_id:
                    self.faults.remove(int(fault_id))
                else:
                    self.faults.clear()
                return Response(200, {"faults": []})
            return Response(200, {"faults": [f.as_dict() for f in self.faults.list()]})
        if rest == "salesforce/staff-edit" and request.method == "POST":
            try:
                spec = json.loads(request.body or b"{}")
                record = self.apis.salesforce_writes.staff_edit(
                    spec["sobject"], spec["external_id_field"], spec["external_id"], spec["fields"]
                )
            except (KeyError, TypeError, ValueError) as error:
                return Response(404, {"error": str(error)})
            return Response(200, record)
        if rest == "salesforce/org":
            org = self.apis.handlers["salesforce"].org  # type: ignore[attr-defined]
            if request.method == "POST":
                spec = json.loads(request.body or b"{}")
                for name in ("multi_currency", "currency", "session_seconds"):
                    if name in spec:
                        setattr(org, name, spec[name])
                if "missing" in spec:
                    org.missing = set(spec["missing"])
                for contact_id, master_id in (spec.get("delete_contacts") or {}).items():
                    self.apis.handlers["salesforce"].delete_record("Contact", contact_id, master_id)  # type: ignore[attr-defined]
                for opportunity_id in spec.get("delete_opportunities") or ():
                    self.apis.handlers["salesforce"].delete_record("Opportunity", opportunity_id)  # type: ignore[attr-defined]
            return Response(200, {"multi_currency": org.multi_currency, "currency": org.currency,
                                  "session_seconds": org.session_seconds, "missing": sorted(org.missing),
                                  "removed": {k: v[1] for k, v in org.removed.items()}})  # fmt: skip
        if rest == "slack":
            if request.method == "DELETE":
                self.slack_messages.clear()
            return Response(200, {"messages": self.slack_messages})
        if rest == "truth/count":
            source, stream = request.arg("source"), request.arg("stream")
            try:
                count = self.world.truth.expected_count(
                    source or "",
                    stream or "",
                    _time_arg(request.arg("since")),
                    _time_arg(request.arg("until")),
                )
            except KeyError as error:
                return Response(404, {"error": str(error)})
            return Response(200, {"source": source, "stream": stream, "count": count})
        return Response(404, {"error": f"no admin resource {rest!r}"})


def _time_arg(value: str | None) -> int | None:
    if not value:
        return None
    if value.isdigit():
        return int(value)
    return to_epoch(datetime.fromisoformat(value.replace("Z", "+00:00")))


def serve(
    world: World,
    host: str = "127.0.0.1",
    port: int = 8765,
    faults: Sequence[Fault] = (),
    ledger_folder: str | Path | None = None,
    **options: Any,
) -> None:
    """Run the sandbox in the foreground until interrupted (``options``: ``SandboxServer``'s keywords)."""
    server = SandboxServer(world, host, port, ledger_folder=ledger_folder, **options)
    for fault in faults:
        server.faults.add(fault)
    log.info(
        "sandbox listening on %s (seed %d, %d learners, reference day %s%s)",
        server.base_url,
        world.seed,
        world.learners,
        world.today or "none: the fixed past",
        ", live" if world.live else "",
    )
    print(f"sandbox listening on {server.base_url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


def sandbox_settings(
    world: World, base_url: str, source: str, ledger_folder: Path | str | None = None, **extra: Any
) -> SourceSettings:
    """Connection settings for a sandbox serving ``world`` at ``base_url`` (also for one in another process)."""
    settings = VENDORS[source].settings(world, base_url, ledger_folder)
    return SourceSettings(settings.base_url, settings.credential, {**settings.extra, **extra})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--learners", type=int, default=1000)
    parser.add_argument("--duplicate-rate", type=float, default=0.09)
    parser.add_argument("--malformed-rate", type=float, default=0.005)
    parser.add_argument("--ledger-folder", default=None, help="write the monthly ledger CSV drops here")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="source[:stream]:kind[:key=value,...], e.g. stripe:charges:rate_limit:times=3",
    )
    parser.add_argument(
        "--today",
        type=date.fromisoformat,
        default=None,
        metavar="YYYY-MM-DD",
        help="the reference day the world is dated from (default: today, UTC); pass one for a repeatable world",
    )
    parser.add_argument("--history-days", type=int, default=90, help="days of data before the reference day")
    parser.add_argument(
        "--fixed-past",
        action="store_true",
        help="serve the fixed 2023-2024 world (no reference day, not live)",
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="let the clock run: records dated after the reference day's midnight appear as their time comes",
    )
    parser.add_argument(
        "--planted-faults",
        action="store_true",
        help="plant the seed's story: last night's dropped enrolments",
    )
    parser.add_argument(
        "--registration-webhook-url",
        default=None,
        metavar="URL",
        help="send the registration form's submissions, signed, to this webhook intake as they happen",
    )
    parser.add_argument(
        "--registration-webhook-secret",
        default=registration.CREDENTIAL,
        help="the form's signing secret (the intake's webhook_registration password)",
    )
    parser.add_argument("--registration-webhook-interval", type=float, default=60.0, metavar="SECONDS")
    parser.add_argument(
        "--prerender",
        action="store_true",
        help="encode every record before serving, so pages cost what a real API's do (for benchmarks)",
    )


def reference_day(args: argparse.Namespace) -> date | None:
    """The day the served world is dated from: ``--today``, else today (UTC); None with ``--fixed-past``."""
    if args.fixed_past:
        if args.today or args.live:
            raise SystemExit("--fixed-past has no reference day: it takes neither --today nor --live")
        return None
    return args.today or datetime.now(UTC).date()


def run(args: argparse.Namespace) -> int:
    world = World(
        seed=args.seed,
        learners=args.learners,
        duplicate_rate=args.duplicate_rate,
        malformed_rate=args.malformed_rate,
        today=reference_day(args),
        history_days=args.history_days,
        live=args.live,
    )
    if args.prerender:
        for table in world.tables.values():
            table.prerender()
    faults = [Fault.parse(spec) for spec in args.fault]
    if args.planted_faults:
        faults += fault_stories.planted(world)
    serve(
        world,
        args.host,
        args.port,
        faults,
        args.ledger_folder,
        registration_webhook_url=args.registration_webhook_url,
        registration_webhook_secret=args.registration_webhook_secret,
        registration_webhook_interval=args.registration_webhook_interval,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cdp sandbox serve", description="Run the vendor API sandbox.")
    add_arguments(parser)
    logging.basicConfig(level=logging.INFO)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
