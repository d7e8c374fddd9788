"""The whole test suite beside a CPU-bound load (issue 20, item 5): does `make test` hold on a busy machine?

Starts ``--burners`` processes that only spin (default 2: one per core of the target machines), runs the
command (default: the README's test command, ``make test``) in the checkout given, samples the load average
every 30 s, stops the burners, and prints one Markdown row for ``benchmarks/suite/RESULTS.md``: the command's
result, its wall time and the load it ran under. Run it from a fresh clone, as CI does:

    git clone -q /path/to/repo /tmp/clone && python3 benchmarks/suite/under_load.py /tmp/clone

Standard library only, so it runs before the clone's ``.venv`` exists (``make test`` builds it).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

SPIN = "while True: pass"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkout", type=Path, help="the clone to test (its own .venv is built by make test)")
    parser.add_argument("--burners", type=int, default=2, help="CPU-bound processes beside the suite")
    parser.add_argument("--command", default="make test", help="what to run in the checkout")
    parser.add_argument("--log", type=Path, default=Path("under_load.log"), help="the command's output")
    parser.add_argument(
        "--timeout", type=float, default=4 * 3600, help="seconds before the command is killed"
    )
    args = parser.parse_args()

    burners = [
        subprocess.Popen([sys.executable, "-c", SPIN], start_new_session=True) for _ in range(args.burners)
    ]
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(30):
            samples.append(os.getloadavg()[0])

    sampler = threading.Thread(target=sample, daemon=True)
    started_at, start = datetime.now(UTC), time.monotonic()
    sampler.start()
    try:
        with args.log.open("wb") as log:
            result = subprocess.run(
                ["bash", "-c", args.command], cwd=args.checkout, stdout=log, stderr=subprocess.STDOUT,
                timeout=args.timeout, check=False,
            )  # fmt: skip
        code = result.returncode
    except subprocess.TimeoutExpired:
        code = "timeout"
    finally:
        done.set()
        for burner in burners:
            os.killpg(burner.pid, signal.SIGKILL)
            burner.wait(timeout=30)
    minutes = (time.monotonic() - start) / 60
    tail = [
        line
        for line in args.log.read_text(errors="replace").splitlines()
        if re.search(r"\d+ (passed|failed)", line)
    ]
    load = f"median {statistics.median(samples):.1f}, max {max(samples):.1f}" if samples else "n/a"
    print("| started (UTC) | command | burners | exit | wall | load average (1 min) | pytest summary |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(
        f"| {started_at:%Y-%m-%d %H:%M} | `{args.command}` | {args.burners} | {code} | {minutes:.1f} min | {load} "
        f"| {tail[-1].strip('= ') if tail else 'none'} |"
    )
    return 0 if code == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
