"""The sync's CPU work in two checkouts, alternating in one run: wall time on a busy machine is noise, CPU is not.

Each round syncs the same seven streams at ``--learners`` learners once per checkout, in a database freshly
copied from a template that checkout's own migrations built, from that checkout's own sandbox. Measured:
wall seconds, the sync process's CPU, the PostgreSQL cluster's CPU (the postmaster's own and its reaped
backends', plus live children) and the sandbox's CPU; their sum is the work a sync costs.

    .venv/bin/python benchmarks/sync/cpu_before_after.py BEFORE_DIR AFTER_DIR [--rounds 5] [--learners 20000]

Each checkout needs its ``.venv`` (``make venv``). One JSON line per sync, then a table of medians and ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
MEASURES = ("wall", "sync_cpu", "pg_cpu", "sandbox_cpu", "total_cpu")

#: run inside a checkout (its python, its cwd): one sync of the benchmark's streams, printed as JSON
ONE_SYNC = """
import json, sys, time
sys.path.insert(0, "benchmarks/sync")
import bench_sync as b
from cdp.sync.specs import BY_KEY
url, base, learners = sys.argv[1], sys.argv[2], int(sys.argv[3])
bench = b.Bench.__new__(b.Bench)
bench.learners, bench.streams = learners, [k for k in b.STREAMS if k in BY_KEY]
settings, end = json.dumps(bench.settings(base)), bench.end_epoch()
cpu = time.process_time()
run = b.contender_ours(url, settings, end, bench.streams)
print(json.dumps({"wall": run["seconds"], "sync_cpu": time.process_time() - cpu, "rows": run["rows"],
                  "quarantined": run["quarantined"]}))
"""


def cpu_seconds(pid: int, children: bool = True) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    user, system, child_user, child_system = (int(x) for x in fields[11:15])
    return (user + system + ((child_user + child_system) if children else 0)) / TICK


def cluster_cpu(pgdata: Path) -> float:
    """The PostgreSQL cluster's CPU so far: ended backends are counted in the postmaster's children's time."""
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    live = subprocess.run(
        ["pgrep", "-P", str(postmaster)], capture_output=True, text=True, timeout=30
    ).stdout.split()
    return cpu_seconds(postmaster) + sum(
        cpu_seconds(int(pid)) for pid in live if Path(f"/proc/{pid}").exists()
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(root: Path, *args: str) -> str:
    result = subprocess.run(
        [str(root / ".venv/bin/python"), *args], cwd=root, capture_output=True, text=True, timeout=7200
    )
    if result.returncode:
        raise SystemExit(f"{root}: {' '.join(args[:2])} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--learners", type=int, default=20_000)
    args = parser.parse_args()
    import psycopg

    from cdp.warehouse.embedded import EmbeddedServer

    checkouts = {"before": args.before.resolve(), "after": args.after.resolve()}
    results: dict[str, list[dict]] = {name: [] for name in checkouts}
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedServer(Path(tmp) / "pg")
        server.start()
        sandboxes: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
        try:
            for name, root in checkouts.items():
                with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
                    conn.execute(f"CREATE DATABASE template_{name}")
                run(root, "-c", "import sys; from cdp.warehouse.migrations import upgrade; upgrade(sys.argv[1])",
                    server.url(f"template_{name}"))  # fmt: skip
                port = free_port()
                serve = [str(root / ".venv/bin/cdp"), "sandbox", "serve"]
                # a sandbox dated from today serves another world than the fixed one the sync's settings name
                help_text = subprocess.run(
                    [*serve, "--help"], cwd=root, capture_output=True, text=True, timeout=120
                ).stdout
                fixed = ["--fixed-past"] if "--fixed-past" in help_text else []
                process = subprocess.Popen(
                    [*serve, "--port", str(port), "--learners", str(args.learners), "--prerender", *fixed],
                    cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                sandboxes[name] = (process, f"http://127.0.0.1:{port}")
            for process, base in sandboxes.values():
                deadline = time.monotonic() + 900
                while True:
                    try:
                        urllib.request.urlopen(f"{base}/_sandbox/health", timeout=2)
                        break
                    except OSError:
                        if time.monotonic() > deadline or process.poll() is not None:
                            raise SystemExit(f"the sandbox at {base} did not start") from None
                        time.sleep(1)
            for round_ in range(args.rounds):
                for name in ("before", "after") if round_ % 2 == 0 else ("after", "before"):
                    database = f"sync_{name}_{round_}"
                    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
                        conn.execute(f"CREATE DATABASE {database} TEMPLATE template_{name}")
                    time.sleep(2)  # let the copy's checkpoint settle outside the measurement
                    sandbox, base = sandboxes[name]
                    pg_before, sandbox_before = (
                        cluster_cpu(server.pgdata),
                        cpu_seconds(sandbox.pid, children=False),
                    )
                    row = json.loads(
                        run(checkouts[name], "-c", ONE_SYNC, server.url(database), base, str(args.learners))
                        .strip().splitlines()[-1]
                    )  # fmt: skip
                    time.sleep(1)  # ended backends are reaped and counted
                    row["pg_cpu"] = cluster_cpu(server.pgdata) - pg_before
                    row["sandbox_cpu"] = cpu_seconds(sandbox.pid, children=False) - sandbox_before
                    row["total_cpu"] = row["sync_cpu"] + row["pg_cpu"] + row["sandbox_cpu"]
                    row |= {"round": round_, "checkout": name}
                    results[name].append(row)
                    print(json.dumps(row), flush=True)
                    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
                        conn.execute(f"DROP DATABASE {database}")
        finally:
            for process, _ in sandboxes.values():
                process.terminate()
                process.wait()
            server.stop()
    print("\n| measure | before: median s | after: median s | after / before |\n| --- | --- | --- | --- |")
    for measure in MEASURES:
        before = statistics.median(row[measure] for row in results["before"])
        after = statistics.median(row[measure] for row in results["after"])
        print(f"| {measure} | {before:.2f} | {after:.2f} | {after / before:.3f} |")


if __name__ == "__main__":
    sys.exit(main())
