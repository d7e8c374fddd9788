"""One engine on one people file, for `bench_side_by_side.py` (one run per process).

    .venv/bin/python benchmarks/dedupe/side_by_side_engine.py ours FILE.csv
    .venv/bin/python benchmarks/dedupe/side_by_side_engine.py ours-no-guard-rails FILE.csv
    benchmarks/.venv-dedupe/bin/python benchmarks/dedupe/side_by_side_engine.py splink FILE.csv
    benchmarks/.venv-dedupe/bin/python benchmarks/dedupe/side_by_side_engine.py splink-febrl-example FILE.csv
    benchmarks/.venv-dedupe/bin/python benchmarks/dedupe/side_by_side_engine.py splink-count FILE.csv

`splink` uses `bench_splink.SCALED_BLOCKING_RULES` (the rules for 1M), `splink-febrl-example` the rules of
Splink's FEBRL examples (the 2026-12-01 runs); `splink-count` (`splink-febrl-example-count`) prints Splink's own
exact count of the comparisons each rule adds; `ours-blocking` / `splink-blocking` report the share of true pairs
that the engine compares at all (untimed; labels used for reporting only).

Both engines read the file the same way and are scored the same way: pairs at the engine's `match`
threshold (ours: class `match`, probability >= 0.9 and no guard rail; Splink: p >= 0.9), and the pairs
those matches imply by transitive closure (computed here, outside the timing, identically for both).
Seconds cover the engine only (training and prediction; the file read is timed apart). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse import csgraph

sys.path.insert(0, str(Path(__file__).parent))
from febrl_data import entity_of, pair_scores  # noqa: E402


def read_people(path: str) -> pd.DataFrame:
    """Every column as text, empty cells missing (postcodes and house numbers keep leading zeros)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])


def closure_scores(left: np.ndarray, right: np.ndarray, all_ids: pd.Series) -> dict[str, float]:
    """Precision/recall/F1 of every pair inside a connected component of the predicted pairs."""
    if len(left) == 0:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "predicted": 0, "largest_cluster": 0}
    ids, codes = np.unique(np.r_[left, right], return_inverse=True)
    graph = sparse.coo_matrix(
        (np.ones(len(left)), (codes[: len(left)], codes[len(left) :])), shape=(len(ids), len(ids))
    )
    _, component = csgraph.connected_components(graph, directed=False)
    entity = dict(zip(all_ids, entity_of(all_ids), strict=True))
    members = pd.DataFrame({"component": component, "entity": [entity[i] for i in ids]})
    sizes = members.groupby("component").size()
    shared = members.groupby(["component", "entity"]).size()
    predicted = int((sizes * (sizes - 1) // 2).sum())
    correct = int((shared * (shared - 1) // 2).sum())
    true_pairs = pair_scores(left[:0], right[:0], all_ids)["true_pairs"]
    precision, recall = correct / max(predicted, 1), correct / max(true_pairs, 1)
    return {
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / max(precision + recall, 1e-12),
        "predicted": predicted,
        "largest_cluster": int(sizes.max()),
    }


def run_ours(people: pd.DataFrame, guard_rails: bool) -> tuple[np.ndarray, np.ndarray, float, dict]:
    from cdp.identity import ResolveConfig, resolve

    started = time.perf_counter()
    pairs = resolve(people, config=ResolveConfig(apply_guard_rails=guard_rails))
    seconds = time.perf_counter() - started
    matches = pairs[pairs["class"] == "match"]
    extra = {
        "candidate_pairs": int(pairs.attrs["candidate_pairs"]),
        "candidate_pairs_sum_over_passes": int(sum(r.pairs for r in pairs.attrs["blocking"])),
        "timings": {k: round(v, 2) for k, v in pairs.attrs["timings"].items()},
    }
    return matches["id_l"].to_numpy(), matches["id_r"].to_numpy(), seconds, extra


def run_splink(people: pd.DataFrame, febrl_example: bool) -> tuple[np.ndarray, np.ndarray, float, dict]:
    from bench_splink import run

    predictions, seconds = run(people, febrl_example=febrl_example)
    return predictions["id_l"].to_numpy(), predictions["id_r"].to_numpy(), seconds, {}


def blocking_recall(people: pd.DataFrame, engine: str) -> dict:
    """Share of the true pairs that the engine compares at all (labels used for reporting only)."""
    if engine == "splink-blocking":
        from bench_splink import run

        candidates, _ = run(people, threshold=None)
    else:
        from cdp.identity import ResolveConfig, resolve

        candidates = resolve(people, config=ResolveConfig(include_non_matches=True))
    scores = pair_scores(candidates["id_l"].to_numpy(), candidates["id_r"].to_numpy(), people["id"])
    return {
        "candidate_pairs": scores["predicted"],
        "true_pairs_compared": scores["true_positives"],
        "true_pairs": scores["true_pairs"],
        "blocking_recall": round(scores["recall"], 5),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "engine",
        choices=[
            "ours",
            "ours-no-guard-rails",
            "splink",
            "splink-febrl-example",
            "splink-count",
            "splink-febrl-example-count",
            "ours-blocking",
            "splink-blocking",
        ],
    )
    parser.add_argument("path")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    started = time.perf_counter()
    people = read_people(args.path)
    read_seconds = time.perf_counter() - started
    rss_after_read = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    if args.engine.endswith("-count"):
        from bench_splink import count_comparisons

        rules = count_comparisons(people, febrl_example=args.engine == "splink-febrl-example-count")
        print(json.dumps({"engine": args.engine, "records": len(people), "rules": rules}))
        return
    if args.engine.endswith("-blocking"):
        print(
            json.dumps(
                {"engine": args.engine, "records": len(people), **blocking_recall(people, args.engine)}
            )
        )
        return
    if args.engine.startswith("splink"):
        left, right, seconds, extra = run_splink(people, febrl_example=args.engine == "splink-febrl-example")
    else:
        left, right, seconds, extra = run_ours(people, guard_rails=args.engine == "ours")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    direct = pair_scores(left, right, people["id"])
    closure = closure_scores(left, right, people["id"])
    print(
        json.dumps(
            {
                "engine": args.engine,
                "records": len(people),
                "seconds": round(seconds, 3),
                "read_seconds": round(read_seconds, 3),
                "peak_rss_gib_self": round(peak, 3),
                "rss_after_read_gib": round(rss_after_read, 3),
                **{k: round(v, 5) if isinstance(v, float) else v for k, v in direct.items()},
                **{f"closure_{k}": round(v, 5) if isinstance(v, float) else v for k, v in closure.items()},
                **extra,
            }
        )
    )


if __name__ == "__main__":
    main()
