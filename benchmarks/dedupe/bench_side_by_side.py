"""Our engine beside Splink on the same data in the same run (issue 4), one process per engine run.

    .venv/bin/python benchmarks/dedupe/bench_side_by_side.py generated:10000 febrl3 febrl4 --repeat 3
    .venv/bin/python benchmarks/dedupe/bench_side_by_side.py generated:100000 generated:1000000 --repeat 3
    .venv/bin/python benchmarks/dedupe/bench_side_by_side.py --table   # tables from the recorded runs

For each data set the people are generated (or loaded, for FEBRL) once and written to one CSV under
benchmarks/.data/side_by_side/; every engine run reads that file. Ours runs in this repository's .venv,
Splink in benchmarks/.venv-dedupe (`side_by_side_engine.py` in each). Engines alternate: repeat 1 runs
ours first, repeat 2 Splink first, and so on. Per run: engine seconds (training and prediction; not the
generation, the file read or the interpreter start, which are recorded apart), the child's peak RSS
(from wait4, the whole process with the data), candidate pairs / comparisons, precision, recall, F1.
A run whose RSS passes --max-rss-gib is killed and recorded as such. Load averages are recorded at the
start and end of every data set. Runs are appended to benchmarks/.data/side_by_side/runs.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

HERE = Path(__file__).parent
REPO = HERE.parents[1]
DATA = REPO / "benchmarks" / ".data" / "side_by_side"
RUNS = DATA / "runs.jsonl"
WORKER = HERE / "side_by_side_engine.py"
PYTHON = {
    "ours": REPO / ".venv" / "bin" / "python",
    "splink": REPO / "benchmarks" / ".venv-dedupe" / "bin" / "python",
}
#: FEBRL: ours with guard rails on (production) and off (how the FEBRL targets are quoted), Splink with
#: the scaled rules and with the rules of its FEBRL examples. Generated data: production settings.
FEBRL_ENGINES = ["ours", "ours-no-guard-rails", "splink", "splink-febrl-example"]
GENERATED_ENGINES = ["ours", "splink"]


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def data_file(dataset: str) -> Path:
    """Write the data set once; later runs (and engines) read the same file."""
    DATA.mkdir(parents=True, exist_ok=True)
    if dataset.startswith("generated:"):
        n_records = int(dataset.split(":")[1])
        path = DATA / f"generated_{n_records}_seed7.csv"
        if not path.exists():
            sys.path.insert(0, str(HERE))
            from generate import generate

            generate(n_records).to_csv(path, index=False)
    else:
        path = DATA / f"{dataset}.csv"
        if not path.exists():
            sys.path.insert(0, str(HERE))
            from febrl_data import load

            load(dataset).to_csv(path, index=False)
    return path


def run_engine(engine: str, path: Path, max_rss_gib: float) -> dict:
    """One worker process; its own peak RSS comes from wait4 (RUSAGE_CHILDREN would give the maximum
    over every child this driver has waited for)."""
    python = PYTHON["splink" if engine.startswith("splink") else "ours"]
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        started = time.perf_counter()
        child = subprocess.Popen([str(python), str(WORKER), engine, str(path)], stdout=stdout, stderr=stderr)
        done, killed, watched_peak = threading.Event(), threading.Event(), [0.0]

        def watch() -> None:
            process = psutil.Process(child.pid)
            while not done.is_set():
                try:
                    rss = process.memory_info().rss / 1024**3
                except psutil.NoSuchProcess:
                    return
                watched_peak[0] = max(watched_peak[0], rss)
                if rss > max_rss_gib:
                    killed.set()
                    child.kill()
                    return
                done.wait(0.2)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        child.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        output, errors = stdout.read(), stderr.read()
    record = {
        "engine": engine,
        "wall_seconds": round(wall, 2),
        "peak_rss_gib": round(usage.ru_maxrss / 1024**2, 3),
        # whole process (start, imports, read, engine, scoring): DuckDB uses both cores, ours mostly one
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "watched_peak_rss_gib": round(watched_peak[0], 3),
        "returncode": child.returncode,
    }
    if killed.is_set():
        record["killed"] = f"RSS above {max_rss_gib} GiB"
    lines = [line for line in output.splitlines() if line.startswith("{")]
    if child.returncode == 0 and lines:
        record.update(json.loads(lines[-1]))
    else:
        record["stderr_tail"] = errors[-2000:]
    return record


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def tables(records: list[dict]) -> str:
    out = []
    datasets = list(dict.fromkeys(r["dataset"] for r in records if r.get("kind") == "run"))
    for dataset in datasets:
        runs = [r for r in records if r.get("kind") == "run" and r["dataset"] == dataset]
        blocks = [
            r for r in records if r.get("kind") == "block" and r["dataset"] == dataset and r.get("repeats", 1)
        ]
        counts = [r for r in records if r.get("kind") == "count" and r["dataset"] == dataset]
        recalls = [r for r in records if r.get("kind") == "blocking" and r["dataset"] == dataset]
        out.append(f"#### {dataset}")
        for block in blocks:
            out.append(
                f"- {block['started']} -> {block['ended']} UTC, "
                f"load average {block['load_start']} -> {block['load_end']}"
            )
        out.append("")
        out.append(
            "| engine | runs | median s (all runs) | median wall s | median CPU s | peak RSS GiB median (all runs) "
            "| candidate pairs | precision | recall | F1 | F1 with closure |"
        )
        out.append("|---|---|---|---|---|---|---|---|---|---|---|")
        medians = {}
        for engine in dict.fromkeys(r["engine"] for r in runs):
            done = [r for r in runs if r["engine"] == engine and "seconds" in r]
            failed = [r for r in runs if r["engine"] == engine and "seconds" not in r]
            if not done:
                reasons = "; ".join(r.get("killed", f"exit {r['returncode']}") for r in failed)
                out.append(f"| {engine} | 0 of {len(failed)} | {reasons} | | | | | | | | |")
                continue
            seconds = [r["seconds"] for r in done]
            rss = [r["peak_rss_gib"] for r in done]
            medians[engine] = (median(seconds), median(rss))
            last = done[-1]
            cpu = [r["cpu_seconds"] for r in done if "cpu_seconds" in r]
            if "candidate_pairs" in last:
                pairs = f"{last['candidate_pairs']:,}"
            elif counted := [c for c in counts if c["engine"] == f"{engine}-count" and "rules" in c]:
                pairs = f"{counted[-1]['rules'][-1]['cumulative']:,}"
            else:
                pairs = "–"
            out.append(
                f"| {engine} | {len(done)}{f' (+{len(failed)} failed)' if failed else ''} "
                f"| {median(seconds):.2f} ({', '.join(f'{s:.2f}' for s in seconds)}) "
                f"| {median([r['wall_seconds'] for r in done]):.2f} "
                f"| {f'{median(cpu):.1f}' if len(cpu) == len(done) else '–'} "
                f"| {median(rss):.2f} ({', '.join(f'{m:.2f}' for m in rss)}) | {pairs} "
                f"| {last['precision']:.4f} | {last['recall']:.4f} | {last['f1']:.4f} | {last['closure_f1']:.4f} |"
            )
        if "ours" in medians and "splink" in medians:  # ours at production settings, Splink's scaled rules
            (ours_s, ours_m), (splink_s, splink_m) = medians["ours"], medians["splink"]
            out.append("")
            out.append(
                f"ours / Splink: time {ours_s / splink_s:.2f}x, peak memory {ours_m / splink_m:.2f}x (medians)"
            )
        for recall in recalls:
            if "blocking_recall" in recall:
                out.append(
                    f"{recall['engine']}: {recall['true_pairs_compared']:,} of {recall['true_pairs']:,} true pairs "
                    f"among {recall['candidate_pairs']:,} candidate pairs "
                    f"(blocking recall {recall['blocking_recall']:.4f})"
                )
        out.append("")
    out.extend(growth(records))
    return "\n".join(out)


def growth(records: list[dict]) -> list[str]:
    """Time and memory factors from the smallest to each larger generated size, per engine (medians)."""
    sizes = sorted(
        {int(r["dataset"].split(":")[1]) for r in records if r["dataset"].startswith("generated:")}
    )
    lines = []
    for engine in ("ours", "splink"):
        medians = {}
        for size in sizes:
            done = [
                r
                for r in records
                if r.get("kind") == "run"
                and r["dataset"] == f"generated:{size}"
                and r["engine"] == engine
                and "seconds" in r
            ]
            if done:
                medians[size] = (
                    median([r["seconds"] for r in done]),
                    median([r["peak_rss_gib"] for r in done]),
                )
        steps = [
            f"{size:,}: {seconds:.2f} s, {rss:.2f} GiB"
            + (
                f" (x{seconds / medians[sizes[0]][0]:.1f} time, x{rss / medians[sizes[0]][1]:.1f} memory)"
                if size != sizes[0] and sizes[0] in medians
                else ""
            )
            for size, (seconds, rss) in medians.items()
        ]
        if steps:
            lines.append(f"growth, {engine}: " + "; ".join(steps))
    return lines


def read_records() -> list[dict]:
    if not RUNS.exists():
        return []
    return [json.loads(line) for line in RUNS.read_text().splitlines() if line.strip()]


def append(record: dict) -> None:
    RUNS.parent.mkdir(parents=True, exist_ok=True)
    with RUNS.open("a") as handle:
        handle.write(json.dumps(record) + "\n")


def main() -> None:
    global RUNS
    parser = argparse.ArgumentParser()
    parser.add_argument("datasets", nargs="*", help="generated:N, febrl3, febrl4")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--max-rss-gib", type=float, default=12.0)
    parser.add_argument(
        "--single-run-above",
        type=float,
        default=600.0,
        help="an engine whose run takes longer is not repeated",
    )
    parser.add_argument("--engines", help="comma-separated, default by data set")
    parser.add_argument("--table", action="store_true", help="print the tables of the recorded runs")
    parser.add_argument("--runs", type=Path, default=RUNS, help="where runs are appended and read from")
    parser.add_argument(
        "--blocking-recall", action="store_true", help="also one untimed run per engine: true pairs compared"
    )
    args = parser.parse_args()
    RUNS = args.runs
    for dataset in args.datasets:
        path = data_file(dataset)
        default = GENERATED_ENGINES if dataset.startswith("generated:") else FEBRL_ENGINES
        engines = args.engines.split(",") if args.engines else default
        block = {"kind": "block", "dataset": dataset, "repeats": args.repeat, "load_start": load_average()}
        block["started"] = datetime.now(UTC).strftime("%H:%M:%S")
        counted = {(r["dataset"], r["engine"]) for r in read_records() if r.get("kind") == "count"}
        for engine in engines:
            if engine.startswith("splink") and (dataset, f"{engine}-count") not in counted:
                count = run_engine(f"{engine}-count", path, args.max_rss_gib)
                append({"kind": "count", "dataset": dataset, **count})
        if args.blocking_recall:
            for engine in dict.fromkeys(e.split("-")[0] for e in engines):
                append(
                    {
                        "kind": "blocking",
                        "dataset": dataset,
                        **run_engine(f"{engine}-blocking", path, args.max_rss_gib),
                    }
                )
        too_slow: set[str] = set()
        for repeat in range(args.repeat):
            for engine in engines if repeat % 2 == 0 else engines[::-1]:
                if engine in too_slow:
                    continue
                record = {"kind": "run", "dataset": dataset, "repeat": repeat + 1, "load": load_average()}
                record.update(run_engine(engine, path, args.max_rss_gib))
                append(record)
                if record["wall_seconds"] > args.single_run_above or "seconds" not in record:
                    too_slow.add(engine)
                print(json.dumps(record), file=sys.stderr, flush=True)
        block.update(ended=datetime.now(UTC).strftime("%H:%M:%S"), load_end=load_average())
        append(block)
    print(tables(read_records()))


if __name__ == "__main__":
    main()
