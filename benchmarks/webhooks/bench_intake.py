"""Webhook intake under sustained load over loopback, with a zero-loss check.

Starts the embedded PostgreSQL (its own folder), migrates a fresh database, serves the intake app with
uvicorn in a child process on 127.0.0.1, and sends signed Typeform and Zigpoll events from client threads,
bounded by a request count and a time limit. Every 20th request re-sends an earlier event (a vendor
retry). Afterwards every acknowledged event must be in raw.records exactly once, and nothing else.

    .venv/bin/python benchmarks/webhooks/bench_intake.py --requests 3000 --concurrency 8 --pool 8 --runs 3
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import psycopg

from cdp.warehouse import migrations
from cdp.warehouse.embedded import EmbeddedServer
from cdp.webhooks import signatures
from cdp.webhooks.config import FormRoute, SourceConfig, WebhookSettings

SECRET = "benchmark-signing-secret-0123456789"
FORM = "kDnP4xQe"
POLL = "64a1f0c2e4b0a1b2c3d4e5f7"


def _settings() -> WebhookSettings:
    return WebhookSettings(
        {
            "typeform": SourceConfig("typeform", SECRET, {FORM: FormRoute(FORM, "responses")}),
            "zigpoll": SourceConfig("zigpoll", SECRET, {POLL: FormRoute(POLL, "responses")}),
        }
    )


def _serve(url: str, port: int, pool: int) -> None:
    import uvicorn

    from cdp.webhooks.app import create_app
    from cdp.webhooks.intake import Intake

    app = create_app(lambda: Intake(url, _settings(), pool_size=pool))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _request(index: int) -> tuple[str, str, bytes, dict[str, str]]:
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    if index % 2:
        event_id = f"evt_{uuid.uuid4().hex}"
        payload = {"id": event_id, "type": "response.created", "createdAt": stamp,
                   "data": {"_id": uuid.uuid4().hex[:24], "pollId": POLL, "createdAt": stamp,
                            "participantId": uuid.uuid4().hex[:24], "response": "9 - Excellent",
                            "metadata": {"course": "python", "moodle_user_id": str(index)}}}  # fmt: skip
        source = "zigpoll"
    else:
        event_id = uuid.uuid4().hex.upper()
        token = uuid.uuid4().hex[:20]
        payload = {"event_id": event_id, "event_type": "form_response",
                   "form_response": {"form_id": FORM, "token": token, "landed_at": stamp, "submitted_at": stamp,
                                     "hidden": {"learner_id": str(index)},
                                     "answers": [{"field": {"id": "Q1rating", "type": "opinion_scale",
                                                            "ref": "skills_improved"}, "type": "number",
                                                  "number": index % 11}]}}  # fmt: skip
        source = "typeform"
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", **signatures.sign(source, SECRET, body, int(now))}
    return source, event_id, body, headers


def run_once(server: EmbeddedServer, args: argparse.Namespace) -> dict[str, float]:
    database = f"bench_{uuid.uuid4().hex[:8]}"
    server.ensure_database(database)
    url = server.url(database)
    migrations.upgrade(url)
    port = _free_port()
    process = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(url, port, args.pool), daemon=True
    )
    process.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(base + "/health", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)

    lock = threading.Lock()
    next_index = [0]
    acknowledged: dict[str, int] = {}
    sent_once: list[tuple[str, str, bytes, dict[str, str]]] = []
    latencies: list[float] = []
    failures = {"non_2xx": 0, "errors": 0}
    deadline = time.monotonic() + args.seconds

    def worker() -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            while time.monotonic() < deadline:
                with lock:
                    index = next_index[0]
                    if index >= args.requests:
                        return
                    next_index[0] += 1
                    retry = index % 20 == 19 and sent_once
                    request = sent_once[index // 2 % len(sent_once)] if retry else None
                if request is None:
                    request = _request(index)
                source, event_id, body, headers = request
                started = time.perf_counter()
                try:
                    response = client.post(f"/{source}", content=body, headers=headers)
                except httpx.HTTPError:
                    with lock:
                        failures["errors"] += 1
                    continue
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    if response.status_code == 200:
                        acknowledged[event_id] = acknowledged.get(event_id, 0) + 1
                        if not retry:
                            sent_once.append(request)
                    else:
                        failures["non_2xx"] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    process.terminate()
    process.join(10)

    with psycopg.connect(url) as conn:
        landed = dict(
            conn.execute(
                "SELECT source_record_id, count(*) FROM raw.records WHERE stream = 'webhook' GROUP BY 1"
            ).fetchall()
        )
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
    lost = [event for event in acknowledged if landed.get(event) != 1]
    unacknowledged_landed = [event for event in landed if event not in acknowledged]
    requests = len(latencies)
    return {
        "requests": requests,
        "events_acknowledged": len(acknowledged),
        "retries_acknowledged": sum(acknowledged.values()) - len(acknowledged),
        "seconds": round(seconds, 2),
        "rps": round(requests / seconds, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(statistics.quantiles(latencies, n=20)[18] * 1000, 1),
        "non_2xx": failures["non_2xx"],
        "errors": failures["errors"],
        "lost_or_duplicated": len(lost),
        "landed_without_ack": len(unacknowledged_landed),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="upper bound on requests per run")
    parser.add_argument("--seconds", type=float, default=60, help="upper bound on time per run")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--pool", type=int, nargs="+", default=[8], help="connection pool sizes to compare")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    server = EmbeddedServer(Path(tempfile.mkdtemp(prefix="cdp-bench-webhooks-")) / "pg")
    server.start()
    try:
        for pool in args.pool:
            results = [
                run_once(server, argparse.Namespace(**{**vars(args), "pool": pool})) for _ in range(args.runs)
            ]
            for result in results:
                print(json.dumps({"pool": pool, **result}))
            median = {key: statistics.median(r[key] for r in results) for key in ("rps", "p50_ms", "p95_ms")}
            zero_loss = all(r["lost_or_duplicated"] == 0 and r["landed_without_ack"] == 0 for r in results)
            print(json.dumps({"pool": pool, "median": median, "zero_loss": zero_loss}))
            if not zero_loss:
                return 1
    finally:
        server.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
