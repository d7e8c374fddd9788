"""Scale benchmark of cdp.identity on generated FEBRL-like people (one size per process).

    python benchmarks/dedupe/bench_scale.py 1000000            # full resolution
    python benchmarks/dedupe/bench_scale.py 1000000 --incremental 10000

Prints one JSON line: seconds (resolution only, data generation excluded), peak RSS of
the process (data included), pair-level precision/recall/F1 of `match` pairs.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from febrl_data import entity_of, true_pair_count  # noqa: E402
from generate import generate  # noqa: E402

import cdp.identity  # noqa: E402
from cdp.identity import ResolveConfig, resolve  # noqa: E402


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n_records", type=int)
    parser.add_argument("--incremental", type=int, default=0, help="resolve this many new against the rest")
    parser.add_argument("--no-guard-rails", action="store_true")
    parser.add_argument(
        "--repeat", type=int, default=1, help="resolve this many times; seconds are the median"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    people = generate(args.n_records)
    config = ResolveConfig(apply_guard_rails=not args.no_guard_rails)
    rss_data = peak_rss_gib()
    runs = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        if args.incremental:
            new, existing = people.iloc[: args.incremental], people.iloc[args.incremental :]
            pairs = resolve(new, existing=existing, config=config)
        else:
            pairs = resolve(people, config=config)
        runs.append(time.perf_counter() - started)
    seconds = statistics.median(runs)
    entity = dict(zip(people["id"], entity_of(people["id"]), strict=True))
    matches = pairs[pairs["class"] == "match"]
    correct = int(
        np.sum([entity[a] == entity[b] for a, b in zip(matches["id_l"], matches["id_r"], strict=True)])
    )
    if args.incremental:
        # True pairs that involve at least one new record.
        new_entities = entity_of(people["id"].iloc[: args.incremental])
        sizes = entity_of(people["id"]).tolist()
        from collections import Counter

        total_sizes, new_sizes = Counter(sizes), Counter(new_entities.tolist())
        true_pairs = sum(k * (total_sizes[e] - k) + k * (k - 1) // 2 for e, k in new_sizes.items())
    else:
        true_pairs = true_pair_count(people["id"])
    precision = correct / max(len(matches), 1)
    recall = correct / max(true_pairs, 1)
    print(
        json.dumps(
            {
                "records": args.n_records,
                "incremental": args.incremental,
                "seconds": round(seconds, 2),
                "runs": [round(r, 2) for r in runs],
                "engine": str(Path(cdp.identity.__file__).parents[2]),
                "peak_rss_gib": round(peak_rss_gib(), 3),
                "rss_after_data_gib": round(rss_data, 3),
                "precision": round(precision, 5),
                "recall": round(recall, 5),
                "f1": round(2 * precision * recall / max(precision + recall, 1e-12), 5),
                "candidate_pairs": int(sum(r.pairs for r in pairs.attrs["blocking"])),
                "timings": {k: round(v, 2) for k, v in pairs.attrs["timings"].items()},
            }
        )
    )


if __name__ == "__main__":
    main()
