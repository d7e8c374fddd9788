"""Entry points: `resolve` for DataFrames, `dedupe_csv` and a CLI for files.

No database and no Airflow here: the nightly job hands people in and takes pairs out.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse import csgraph

from cdp.identity.blocking import candidate_pairs, pass_members
from cdp.identity.compare import FEATURE_LEVELS, compare_pairs, encode_people
from cdp.identity.config import MATCH, NON_MATCH, POSSIBLE_MATCH, ROLES, ResolveConfig
from cdp.identity.model import (
    classify,
    estimate_u,
    fit,
    fit_by_pass,
    guard_rails,
    score,
    term_frequency_adjustments,
)
from cdp.identity.normalize import normalize_coded

log = logging.getLogger(__name__)

#: Guard value of a pair that is a match because both records match a third (see `with_cluster_pairs`).
GUARD_CLUSTER = "cluster"

PAIR_COLUMNS = ["id_l", "id_r", "score", "match_weight", "class", "guard"] + [
    f"{feature}_level" for feature in FEATURE_LEVELS
]


def _with_ids(people: pd.DataFrame, id_offset: int = 0) -> pd.DataFrame:
    if "id" in people.columns:
        if people["id"].isna().any():
            raise ValueError("people.id has missing values")
        return people
    return people.assign(id=np.arange(id_offset, id_offset + len(people)))


def resolve(
    people: pd.DataFrame, *, existing: pd.DataFrame | None = None, config: ResolveConfig | None = None
) -> pd.DataFrame:
    """Score candidate pairs of people and classify them as match / possible_match / non_match.

    `people` uses the canonical role columns (`ROLES`); any may be missing. With `existing`,
    only pairs involving at least one row of `people` are made (incremental mode), and
    `id_l` is always a row of `people`. Non-matches are left out unless
    `config.include_non_matches`. Ids must be unique across both frames.
    """
    config = config or ResolveConfig()
    started = time.perf_counter()
    people = _with_ids(people)
    if existing is not None:
        existing = _with_ids(existing, id_offset=len(people))
        combined = pd.concat([people, existing], ignore_index=True, sort=False)
        is_new = np.r_[np.ones(len(people), dtype=bool), np.zeros(len(existing), dtype=bool)]
    else:
        combined, is_new = people.reset_index(drop=True), None
    if combined["id"].duplicated().any():
        raise ValueError("ids must be unique across people and existing")

    normalized = normalize_coded(combined, config)
    encoded = encode_people(normalized)
    n_rows = len(combined)
    timings = {"normalize": time.perf_counter() - started}

    left, right, reports = candidate_pairs(
        normalized, config.blocking_passes, max_block_size=config.max_block_size, is_new=is_new
    )
    timings["blocking"] = time.perf_counter() - started - sum(timings.values())
    levels = compare_pairs(encoded, left, right)
    timings["compare"] = time.perf_counter() - started - sum(timings.values())

    u = estimate_u(encoded, n_rows, config)
    n_new = len(people)
    comparable = (
        (n_new * (n_new - 1) // 2 + n_new * (len(combined) - n_new))
        if is_new is not None
        else (len(combined) * (len(combined) - 1) // 2)
    )
    if config.m_by_blocking_pass:
        members = pass_members(normalized, config.blocking_passes, left, right, FEATURE_LEVELS)
        model = fit_by_pass(levels, u, comparable, config, members)
    else:
        model = fit(levels, u, comparable, config)
    weight = score(levels, model, term_frequency_adjustments(encoded, levels, left, model, config))
    probability = 1.0 / (1.0 + np.exp2(-np.clip(weight, -60, 60)))
    guard = guard_rails(levels)
    classes = classify(probability, guard, config)
    timings["model"] = time.perf_counter() - started - sum(timings.values())

    keep = np.ones(len(classes), dtype=bool) if config.include_non_matches else classes != NON_MATCH
    ids = combined["id"].to_numpy()
    pairs = pd.DataFrame(
        {
            "id_l": ids[left[keep]],
            "id_r": ids[right[keep]],
            "score": probability[keep],
            "match_weight": weight[keep],
            "class": classes[keep],
            "guard": guard.to_numpy()[keep],
        }
    )
    for feature in FEATURE_LEVELS:
        pairs[f"{feature}_level"] = levels[feature].to_numpy()[keep]
    pairs.attrs["blocking"] = reports
    pairs.attrs["candidate_pairs"] = len(left)
    pairs.attrs["model"] = model
    pairs.attrs["timings"] = timings
    log.info(
        "resolve: %d records (%d new), %d candidate pairs, %d match, %d possible_match, %.1f s",
        n_rows,
        int(is_new.sum()) if is_new is not None else n_rows,
        len(left),
        int((classes == MATCH).sum()),
        int((classes == POSSIBLE_MATCH).sum()),
        time.perf_counter() - started,
    )
    return pairs.sort_values("score", ascending=False, ignore_index=True)


def with_cluster_pairs(pairs: pd.DataFrame, max_cluster_size: int = 8) -> pd.DataFrame:
    """Add the pairs that matches imply: two records that each match a third are one person too.

    FEBRL-style data holds several duplicates of one original, each corrupted separately; two duplicates
    may share too little to match directly, or never meet in a block, while both match the original. The
    implied pairs are `match` with guard `cluster` and the lowest match score on the path joining them.
    Clusters larger than `max_cluster_size` are left as scored: a long chain is weaker evidence than its
    links. Used by `dedupe_csv` (pairs out of a file); the warehouse merges its own clusters (see
    `cdp.identity.runs.apply_run`) and needs no implied pairs.
    """
    matches = pairs[pairs["class"] == MATCH]
    if matches.empty:
        return pairs
    ids, codes = np.unique(np.r_[matches["id_l"].to_numpy(), matches["id_r"].to_numpy()], return_inverse=True)
    left, right = codes[: len(matches)], codes[len(matches) :]
    graph = sparse.coo_matrix((np.ones(len(left)), (left, right)), shape=(len(ids), len(ids)))
    _, component = csgraph.connected_components(graph, directed=False)
    sizes = np.bincount(component)
    members: dict[int, list[int]] = {}
    for record, group in enumerate(component):
        if 2 < sizes[group] <= max_cluster_size:
            members.setdefault(group, []).append(record)
    if not members:
        return pairs
    score = {}
    for a, b, value in zip(left, right, matches["score"].to_numpy(), strict=True):
        score[(min(a, b), max(a, b))] = value
    implied: dict[frozenset, float] = {}
    for group in members.values():
        floor = min(score[(a, b)] for a in group for b in group if (a, b) in score)
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                if (min(a, b), max(a, b)) not in score:
                    implied[frozenset((ids[a], ids[b]))] = floor
    if not implied:
        return pairs
    scored = [frozenset(pair) for pair in zip(pairs["id_l"], pairs["id_r"], strict=True)]
    # A pair scored below `match` keeps its row and its score; the cluster lifts its class.
    lifted = np.fromiter((pair in implied for pair in scored), dtype=bool, count=len(scored))
    pairs = pairs.copy()
    pairs.loc[lifted, "class"] = MATCH
    pairs.loc[lifted, "guard"] = GUARD_CLUSTER
    new = [pair for pair in implied if pair not in set(scored)]
    added = pd.DataFrame(
        {
            "id_l": [sorted(pair, key=str)[0] for pair in new],
            "id_r": [sorted(pair, key=str)[1] for pair in new],
            "score": [implied[pair] for pair in new],
            "match_weight": np.nan,
            "class": MATCH,
            "guard": GUARD_CLUSTER,
        }
    )
    return pd.concat([pairs, added], ignore_index=True).sort_values(
        "score", ascending=False, ignore_index=True
    )


def people_from_csv(path: str | Path, columns: dict[str, str]) -> pd.DataFrame:
    """Read a CSV as text and rename its columns to roles; unknown roles are refused."""
    unknown = set(columns) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; roles are {', '.join(ROLES)}")
    frame = pd.read_csv(path, dtype=str, keep_default_na=True, usecols=list(columns.values()))
    return frame.rename(columns={column: role for role, column in columns.items()})[list(columns)]


def dedupe_csv(
    input_path: str | Path,
    output_path: str | Path,
    columns: dict[str, str],
    config: ResolveConfig | None = None,
) -> pd.DataFrame:
    """Dedupe any CSV: map its columns to roles, write every match (direct or implied by a cluster, see
    `with_cluster_pairs`) and possible match."""
    people = people_from_csv(input_path, columns)
    pairs = with_cluster_pairs(resolve(people, config=config))
    pairs = pairs[pairs["class"] != NON_MATCH]
    pairs.to_csv(output_path, index=False)
    return pairs


def parse_columns(text: str) -> dict[str, str]:
    """'given_name=First Name,family_name=Surname' -> {role: column}."""
    mapping = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        role, sep, column = item.partition("=")
        if not sep or not column.strip():
            raise argparse.ArgumentTypeError(f"expected ROLE=COLUMN, got {item!r}")
        mapping[role.strip()] = column.strip()
    return mapping


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `cdp dedupe`."""
    parser.add_argument("--input", required=True, type=Path, help="CSV of people")
    parser.add_argument("--output", required=True, type=Path, help="CSV of matched pairs to write")
    parser.add_argument(
        "--columns",
        required=True,
        type=parse_columns,
        help=f"ROLE=COLUMN,... with roles among: {', '.join(ROLES)}",
    )
    parser.add_argument(
        "--default-region",
        default=ResolveConfig.default_region,
        help="region for phone numbers without a country code (ISO 3166 alpha-2)",
    )


def run(args: argparse.Namespace) -> int:
    """Run `cdp dedupe` from parsed arguments; returns the exit code."""
    config = ResolveConfig(default_region=args.default_region)
    pairs = dedupe_csv(args.input, args.output, args.columns, config)
    counts = pairs["class"].value_counts()
    print(
        f"{len(pairs)} pairs written to {args.output}: "
        f"{counts.get(MATCH, 0)} match, {counts.get(POSSIBLE_MATCH, 0)} possible_match"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`cdp dedupe --input … --output … --columns …` on a CSV (`cdp.identity.commands` hands the warehouse
    actions `cdp dedupe run|review|unmerge` elsewhere)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="cdp dedupe",
        description="Find duplicate people in a CSV. Warehouse actions: cdp dedupe run|review|unmerge --help",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
