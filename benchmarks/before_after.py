"""Two checkouts side by side in one run: the sync, reconciliation and dedupe benchmarks, alternating.

A refactor must not make the product slower (issue 14). Each checkout runs the benchmarks with its own
``.venv`` (``make venv`` in it first) from its own folder, so each measures its own code; the two alternate
in every round (before, after; then after, before; ...) so that a noisy machine hurts both alike.

    .venv/bin/python benchmarks/before_after.py BEFORE_DIR AFTER_DIR [--rounds 3] [--learners 20000] \\
        [--gifts 200000] [--people 100000] [--out benchmarks/before_after.json]

Prints one JSON line per measurement and, at the end, a Markdown table of medians and after/before ratios.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

TIMEOUT = 3600


def _run(root: Path, args: list[str]) -> str:
    result = subprocess.run(
        [str(root / ".venv" / "bin" / "python"), *args],
        cwd=root, capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"{root}: {' '.join(args)} failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}")
    return result.stdout


def sync_seconds(root: Path, learners: int) -> float:
    """Our initial sync of the sandbox's streams at ``learners`` learners (engine, connectors, SQL, audit)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sync.json"
        _run(root, ["benchmarks/sync/bench_sync.py", "--learners", str(learners), "--repeats", "1",
                    "--contenders", "ours", "--out", str(out)])  # fmt: skip
        return float(json.loads(out.read_text())["runs"][0]["seconds"])


def reconcile_seconds(root: Path, gifts: int) -> float:
    """One month of ``gifts`` gifts reconciled in SQL (data generation excluded)."""
    text = _run(root, ["benchmarks/reconcile/bench_reconcile.py", "--gifts", str(gifts), "--repeat", "1"])
    return float(re.search(r"reconcile \(SQL\): median ([0-9.]+)s", text).group(1))


def dedupe_seconds(root: Path, people: int) -> float:
    """Full identity resolution of ``people`` generated people (data generation excluded)."""
    text = _run(root, ["benchmarks/dedupe/bench_scale.py", str(people)])
    return float(json.loads(text.strip().splitlines()[-1])["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--learners", type=int, default=20_000)
    parser.add_argument("--gifts", type=int, default=200_000)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--only", default="", help="comma-separated measures to run: sync, reconcile, dedupe")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "before_after.json")
    args = parser.parse_args()
    checkouts = {"before": args.before.resolve(), "after": args.after.resolve()}
    measures = {
        f"sync, {args.learners:,} learners": lambda root: sync_seconds(root, args.learners),
        f"reconcile, {args.gifts:,} gifts": lambda root: reconcile_seconds(root, args.gifts),
        f"dedupe, {args.people:,} people": lambda root: dedupe_seconds(root, args.people),
    }
    if args.only:
        wanted = {name.strip() for name in args.only.split(",")}
        measures = {name: run for name, run in measures.items() if name.split(",")[0] in wanted}
    rows: list[dict[str, object]] = []
    for round_ in range(args.rounds):
        order = ["before", "after"] if round_ % 2 == 0 else ["after", "before"]
        for measure, run in measures.items():
            for label in order:
                started = time.time()
                seconds = run(checkouts[label])
                row = {"round": round_, "measure": measure, "checkout": label, "seconds": seconds,
                       "started": started}  # fmt: skip
                rows.append(row)
                print(json.dumps(row), flush=True)
    args.out.write_text(
        json.dumps({"checkouts": {k: str(v) for k, v in checkouts.items()}, "rows": rows}, indent=1)
    )
    print("\n| measure | before: median s (runs) | after: median s (runs) | after / before |")
    print("| --- | --- | --- | --- |")
    for measure in measures:
        times = {
            label: [r["seconds"] for r in rows if r["measure"] == measure and r["checkout"] == label]
            for label in checkouts
        }
        before, after = statistics.median(times["before"]), statistics.median(times["after"])
        runs = {label: ", ".join(f"{t:.1f}" for t in values) for label, values in times.items()}
        print(
            f"| {measure} | {before:.1f} ({runs['before']}) | {after:.1f} ({runs['after']}) | {after / before:.2f} |"
        )


if __name__ == "__main__":
    main()
