"""Benchmark: what keeping personal data out of the audit chain costs a bulk upsert of people.

0012_privacy_erasure replaces the change trigger: each row image is split into its public part (chained)
and its personal fields (sealed into audit.personal_image). This times the same statements on a database
at 0005_access_consent (the old trigger: whole images chained) and at head (the split), side by side on
one embedded PostgreSQL: an INSERT of N people, an UPDATE of all N, and an erasure of one of them at head.
Each repeat uses a fresh copy of the migrated database. Prints medians and the head/0005 ratio.

    .venv/bin/python benchmarks/audit/bench_audit_images.py [--people 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import psycopg

from cdp.warehouse import migrations
from cdp.warehouse.embedded import EmbeddedServer

INSERT = (
    "INSERT INTO core.person (given_name, family_name, date_of_birth, email, email_normalized, phone, country,"
    " jurisdiction, is_learner)"
    " SELECT 'Given' || g, 'Family' || g, DATE '1980-01-01' + (g %% 9000), 'p' || g || '@example.org',"
    " 'p' || g || '@example.org', '+1 555 ' || lpad(g::text, 7, '0'), 'US', 'US', true"
    " FROM generate_series(1, %s) g"
)
UPDATE = "UPDATE core.person SET family_name = family_name || '-x', updated_at = now()"


def _timed(url: str, statement: str, params: tuple = ()) -> float:
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        conn.execute(statement, params)
        conn.commit()
        return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cdp-bench-audit-") as folder:
        server = EmbeddedServer(Path(folder) / "pg")
        server.start()
        try:
            templates = {"0005": "t_0005", "head": "t_head"}
            for label, name in templates.items():
                server.ensure_database(name)
                revision = "0005_access_consent" if label == "0005" else "head"
                migrations.upgrade(server.url(name), revision)
            times: dict[str, list[float]] = {}
            for repeat in range(args.repeat):
                for label, template in templates.items():
                    name = f"run_{label}_{repeat}"
                    with psycopg.connect(server.url("postgres"), autocommit=True) as admin:
                        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                    url = server.url(name)
                    times.setdefault(f"insert {label}", []).append(_timed(url, INSERT, (args.people,)))

                    times.setdefault(f"update {label}", []).append(_timed(url, UPDATE))
                    if label == "head":
                        with psycopg.connect(url) as conn:
                            person = conn.execute("SELECT person_id FROM core.person LIMIT 1").fetchone()[0]
                        times.setdefault("erase one person (head)", []).append(
                            _timed(url, "SELECT privacy.erase_person(%s, 'bench')", (person,))
                        )
                        with psycopg.connect(url) as conn:
                            images = conn.execute("SELECT count(*) FROM audit.personal_image").fetchone()[0]
                        print(f"head: {images} personal images after insert + update of {args.people}")
        finally:
            server.destroy()
    print(f"{args.people} people, medians of {args.repeat}:")
    for step in ("insert", "update"):
        old, new = statistics.median(times[f"{step} 0005"]), statistics.median(times[f"{step} head"])
        runs = ", ".join(f"{t:.2f}" for t in times[f"{step} head"])
        print(f"  {step}: 0005 {old:.2f} s, head {new:.2f} s ({runs}), ratio head/0005 {new / old:.2f}")
    erase = times["erase one person (head)"]
    print(
        f"  erase one person at head: {statistics.median(erase):.2f} s ({', '.join(f'{t:.2f}' for t in erase)})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
