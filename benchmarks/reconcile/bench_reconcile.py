"""Benchmark: reconcile one month of N gifts (default 1,000,000) in the warehouse, target < 30 s.

Starts its own embedded PostgreSQL in a temporary folder, migrates it, writes N donations, N Stripe
charges (+ refunds) and ~2N ledger lines for one month straight into the finance contract tables (triggers
off for the load only: the audit trail would otherwise hold every generated row), then times
``cdp.finance.reconcile.reconcile_month`` (SQL matching, totals, result rows) and the same with the finance
report written. Prints the medians of ``--repeat`` runs and checks the planted differences were found.

    .venv/bin/python benchmarks/reconcile/bench_reconcile.py [--gifts 1000000] [--repeat 3] [--url URL]

``--url`` reuses a database this script's generate.sql already filled with the same ``--gifts`` (generating
1M gifts takes minutes on a busy machine); the counts are checked before timing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import psycopg
import sqlparse

from cdp.finance.reconcile import reconcile_month
from cdp.warehouse import Actor, migrations
from cdp.warehouse.embedded import EmbeddedServer

HERE = Path(__file__).resolve().parent
ACTOR = Actor("benchmark")


def expected(n: int) -> dict[str, int]:
    """How many rows of each planted class a correct reconciliation finds among n gifts (see generate.sql)."""
    gifts = range(1, n + 1)
    missing_w = {g for g in gifts if g % 200 == 7}
    twice = {g for g in gifts if g % 1000 == 11}  # an extra, equal contribution line
    missing_l = {g for g in gifts if g % 333 == 5} - twice  # the extra line alone still posts the gift
    duplicate = twice - {g for g in gifts if g % 333 == 5}
    typo = {g for g in gifts if g % 500 == 3} - missing_l - twice
    return {
        "in_ledger_not_warehouse": len(missing_w - missing_l - duplicate),
        "in_stripe_only": len(missing_w & missing_l),
        "in_warehouse_not_ledger": len(missing_l - missing_w),
        "duplicate": len(duplicate),
        "amount_mismatch": len(typo - missing_w),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gifts", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url", help="an already generated database (see the module docstring)")
    args = parser.parse_args()
    if args.url:
        with psycopg.connect(args.url) as conn:
            charges = conn.execute(
                "SELECT count(*) FROM core.balance_transaction WHERE type = 'charge'"
            ).fetchone()[0]
        if charges != args.gifts:
            raise SystemExit(f"{args.url} holds {charges} gifts, not {args.gifts}: generate it without --url")
        measure(args.url, args)
        return 0

    with tempfile.TemporaryDirectory(prefix="cdp-bench-reconcile-") as folder:
        server = EmbeddedServer(Path(folder) / "pg")
        server.start()
        try:
            server.ensure_database("bench")
            url = server.url("bench")
            migrations.upgrade(url)
            started = time.perf_counter()
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("SET session_replication_role = replica")  # no triggers while generating
                for statement in sqlparse.split((HERE / "generate.sql").read_text()):
                    if sqlparse.format(statement, strip_comments=True).strip():
                        conn.execute(statement, {"n": args.gifts})
                sizes = conn.execute(
                    "SELECT (SELECT count(*) FROM core.donation), (SELECT count(*) FROM core.balance_transaction),"
                    " (SELECT count(*) FROM core.ledger_posting)"
                ).fetchone()
            print(f"generated {args.gifts:,} gifts: {sizes[0]:,} donations, {sizes[1]:,} balance transactions, "
                  f"{sizes[2]:,} ledger lines in {time.perf_counter() - started:.1f}s")  # fmt: skip

            measure(url, args)
        finally:
            server.stop()
    return 0


def measure(url: str, args: argparse.Namespace) -> None:
    plain, with_report = [], []
    with tempfile.TemporaryDirectory(prefix="cdp-bench-reports-") as reports:
        for _ in range(args.repeat):
            result = reconcile_month(url, "2024-03", actor=ACTOR)
            plain.append(result.seconds)
            reported = reconcile_month(url, "2024-03", actor=ACTOR, report_dir=Path(reports))
            with_report.append(reported.seconds)
    print(f"reconcile (SQL): median {statistics.median(plain):.2f}s of {plain}")
    print(f"reconcile + HTML/CSV report: median {statistics.median(with_report):.2f}s of {with_report}")
    found = {c: result.total(c)[0] for c in expected(args.gifts)}
    print(f"gifts reconciled: {result.gifts:,}; planted classes found: {found}")
    assert result.gifts == args.gifts, result.gifts
    assert found == expected(args.gifts), (found, expected(args.gifts))


if __name__ == "__main__":
    raise SystemExit(main())
