"""Why strangers match: false `match` pairs on generated people, with their evidence.

    python benchmarks/dedupe/diagnose_false_matches.py 1000000 --sample 25

Prints (on generated, synthetic people only: no real personal data) the most common agreement patterns
among false matches beside true ones, a sample of false matches with their values, comparison levels,
per-feature weights, term-frequency adjustment and the blocking passes that put them together, and the
model's weights. Uses the same `resolve` as the benchmark; `--pickle` keeps the generated people between
runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from febrl_data import entity_of  # noqa: E402
from generate import generate  # noqa: E402

from cdp.identity import ResolveConfig, resolve  # noqa: E402
from cdp.identity.blocking import compound_key_codes  # noqa: E402
from cdp.identity.compare import FEATURE_LEVELS  # noqa: E402
from cdp.identity.normalize import normalize_coded  # noqa: E402

SHOWN = ["given_name", "family_name", "date_of_birth", "street_number", "street", "locality", "postcode"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n_records", type=int)
    parser.add_argument("--sample", type=int, default=20)
    parser.add_argument("--pickle", type=Path, help="cache of the generated people")
    parser.add_argument("--no-guard-rails", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.pickle and args.pickle.exists():
        people = pd.read_pickle(args.pickle)
    else:
        people = generate(args.n_records)
        if args.pickle:
            people.to_pickle(args.pickle)
    config = ResolveConfig(apply_guard_rails=not args.no_guard_rails)
    pairs = resolve(people, config=config)
    model = pairs.attrs["model"]
    weights = model.weights()
    print("prior (log2 odds):", round(float(np.log2(model.random_pair_match_rate)), 2))
    for feature, w in weights.items():
        print(
            f"  {feature:14s} m={np.round(model.m[feature], 4)} u={np.round(model.u[feature], 5)} w={np.round(w, 2)}"
        )

    entity = pd.Series(entity_of(people["id"]), index=people["id"])
    matches = pairs[pairs["class"] == "match"].copy()
    matches["true"] = entity.loc[matches["id_l"]].to_numpy() == entity.loc[matches["id_r"]].to_numpy()
    level_columns = [f"{f}_level" for f in FEATURE_LEVELS]
    false = matches[~matches["true"]]
    print(f"\n{len(matches)} matches, {len(false)} false ({len(false) / max(len(matches), 1):.4f})")

    def patterns(frame: pd.DataFrame) -> pd.Series:
        return frame[level_columns].astype(str).agg("".join, axis=1).value_counts()

    false_patterns, true_patterns = patterns(false), patterns(matches[matches["true"]])
    print("\nlevel pattern (" + " ".join(f[:4] for f in FEATURE_LEVELS) + "): false / true count")
    for pattern, count in false_patterns.head(15).items():
        print(f"  {' '.join(pattern)}  {count:6d} / {int(true_patterns.get(pattern, 0)):6d}")
    print("\nfalse matches by level, per feature:")
    for column in level_columns:
        print(f"  {column:22s}", false[column].value_counts().sort_index().to_dict())

    # Which blocking passes put each sampled pair together.
    normalized = normalize_coded(people, config)
    row_of = pd.Series(np.arange(len(people)), index=people["id"])
    sample = false.sample(min(args.sample, len(false)), random_state=1)
    lrows, rrows = row_of.loc[sample["id_l"]].to_numpy(), row_of.loc[sample["id_r"]].to_numpy()
    cache: dict = {key: (c.codes, len(c.values)) for key, c in normalized.items()}
    found_by = [[] for _ in range(len(sample))]
    for blocking_pass in config.blocking_passes:
        codes = compound_key_codes(normalized, blocking_pass.keys, cache)
        same = (codes[lrows] == codes[rrows]) & (codes[lrows] >= 0)
        for i in np.flatnonzero(same):
            found_by[i].append(blocking_pass.name)
    indexed = people.set_index("id")
    print("\nsample of false matches:")
    for i, (_, pair) in enumerate(sample.iterrows()):
        left, right = indexed.loc[pair["id_l"]], indexed.loc[pair["id_r"]]
        print(f"- weight {pair['match_weight']:.1f} p={pair['score']:.4f} passes={','.join(found_by[i])}")
        for side in (left, right):
            print("    " + " | ".join(str(side.get(c)) for c in SHOWN))
        evidence = {
            f: (int(pair[f"{f}_level"]), round(float(weights[f][int(pair[f"{f}_level"])]), 1))
            for f in FEATURE_LEVELS
            if pair[f"{f}_level"] >= 0
        }
        prior = model.random_pair_match_rate
        tf = pair["match_weight"] - np.log2(prior / (1 - prior)) - sum(w for _, w in evidence.values())
        print("    levels/weights:", evidence, f"tf adjustment {tf:+.1f}")


if __name__ == "__main__":
    main()
