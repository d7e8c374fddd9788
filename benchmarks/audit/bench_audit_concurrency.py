"""Benchmark: concurrent audited writers with the chain sealed at commit (0017) beside the lock held to commit.

Before 0017 the chain's trigger took its advisory lock at an event's insert and held it to the writer's
commit, so audited transactions ran one at a time from their first audited write on. Since 0017 an event is
stamped without a lock and sealed at commit under a lock that is only tried. This runs the same workload on
a database at 0016 (the old trigger) and one at head, side by side on one embedded PostgreSQL, alternating:
N writer threads, each with its own connection, each committing T transactions of one audited write (an
INSERT into core.person, so the change trigger writes an event) followed by `--work-ms` of other work inside
the transaction (what a sync does after its first audited write). Each round uses fresh copies of both
databases. Prints transactions per second per round, medians and the head/0016 ratio, and checks that
`cdp audit verify` passes on every database afterwards.

    .venv/bin/python benchmarks/audit/bench_audit_concurrency.py [--writers 8] [--transactions 40] \\
        [--work-ms 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import psycopg

from cdp import audit
from cdp.warehouse import migrations
from cdp.warehouse.embedded import EmbeddedServer

REVISIONS = {"0016 (lock to commit)": "0016_webhook_intake_limits", "head (sealed at commit)": "head"}


def _writer(url: str, transactions: int, work_ms: float, errors: list[BaseException]) -> None:
    try:
        with psycopg.connect(url) as conn:
            for _ in range(transactions):
                conn.execute("INSERT INTO core.person (given_name, country) VALUES ('Bench', 'US')")
                if work_ms:
                    conn.execute("SELECT pg_sleep(%s)", (work_ms / 1000,))
                conn.commit()
    except BaseException as error:  # noqa: BLE001 - reported by the main thread
        errors.append(error)


def run_once(url: str, writers: int, transactions: int, work_ms: float) -> float:
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_writer, args=(url, transactions, work_ms, errors)) for _ in range(writers)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise errors[0]
    with psycopg.connect(url) as conn:
        sealed_at_commit = conn.execute("SELECT to_regproc('audit.seal') IS NOT NULL").fetchone()[0]
        conn.commit()
        # verify of today's code reads the head's schema; at 0016 the chain is checked by its numbers.
        report = audit.verify(conn) if sealed_at_commit else None
        events = conn.execute(
            "SELECT count(*), count(DISTINCT seq), max(seq) FROM audit.audit_events"
        ).fetchone()
    if report is not None and (not report.ok or report.unsealed):
        raise SystemExit(f"{url}: {report.summary()}")
    if events != (writers * transactions,) * 3:
        raise SystemExit(f"{url}: events, distinct seq, max seq = {events}")
    return writers * transactions / seconds


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--transactions", type=int, default=40, help="per writer")
    parser.add_argument("--work-ms", type=float, nargs="+", default=[0.0, 5.0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cdp-bench-audit-conc-") as folder:
        server = EmbeddedServer(Path(folder) / "pg")
        server.start()
        try:
            templates = {}
            for index, (label, revision) in enumerate(REVISIONS.items()):
                name = f"t_{index}"
                server.ensure_database(name)
                migrations.upgrade(server.url(name), revision)
                templates[label] = name
            for work_ms in args.work_ms:
                rates: dict[str, list[float]] = {label: [] for label in templates}
                for round_ in range(args.rounds):
                    for label, template in templates.items():
                        name = f"r_{round_}_{template}_{int(work_ms * 10)}"
                        with psycopg.connect(server.url("postgres"), autocommit=True) as admin:
                            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                        rate = run_once(server.url(name), args.writers, args.transactions, work_ms)
                        rates[label].append(rate)
                        print(
                            f"work {work_ms} ms, round {round_ + 1}, {label}: {rate:.0f} transactions/s",
                            flush=True,
                        )
                before, after = (statistics.median(values) for values in rates.values())
                print(
                    f"work {work_ms} ms, {args.writers} writers x {args.transactions}: median "
                    + ", ".join(
                        f"{label} {statistics.median(v):.0f}/s {[round(x) for x in v]}"
                        for label, v in rates.items()
                    )
                    + f"; head / 0016 = {after / before:.2f}",
                    flush=True,
                )
        finally:
            server.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
