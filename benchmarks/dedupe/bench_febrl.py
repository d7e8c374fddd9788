"""FEBRL3 / FEBRL4 quality of cdp.identity (soc_sec_id removed), thresholds as in ResolveConfig.

python benchmarks/dedupe/bench_febrl.py febrl3 febrl4 [--repeat 3]

Pairs are scored as `cdp dedupe --input` writes them: direct matches plus the pairs their clusters imply
(`with_cluster_pairs`). Seconds are the median of the repeats (quality is deterministic).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from febrl_data import load, pair_scores  # noqa: E402

from cdp.identity import ResolveConfig, resolve  # noqa: E402
from cdp.identity.resolve import with_cluster_pairs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("datasets", nargs="*", default=["febrl3", "febrl4"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for name in args.datasets:
        people = load(name)
        for guard_rails in (True, False):
            seconds = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                pairs = with_cluster_pairs(
                    resolve(people, config=ResolveConfig(apply_guard_rails=guard_rails))
                )
                seconds.append(time.perf_counter() - started)
            matches = pairs[pairs["class"] == "match"]
            flagged = pairs[pairs["class"] != "non_match"]
            result = pair_scores(matches.id_l.to_numpy(), matches.id_r.to_numpy(), people["id"])
            flagged_f1 = pair_scores(flagged.id_l.to_numpy(), flagged.id_r.to_numpy(), people["id"])["f1"]
            print(
                json.dumps(
                    {
                        "dataset": name,
                        "guard_rails": guard_rails,
                        "median_seconds": round(statistics.median(seconds), 2),
                        "runs": [round(s, 2) for s in seconds],
                        **{k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()},
                        "f1_match_or_possible": round(flagged_f1, 4),
                    }
                )
            )


if __name__ == "__main__":
    main()
