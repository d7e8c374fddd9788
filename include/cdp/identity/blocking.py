"""Candidate pairs from several blocking passes on compound keys.

Each pass groups records that share every key of the pass exactly; pairs are only
formed inside a group, so the number of pairs grows with the sizes of the groups,
not with the square of the table. Groups above a size cap are skipped and logged:
a key shared by hundreds of people (a common name in a big city) is no evidence.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cdp.identity.config import KEY_FEATURES, BlockingPass
from cdp.identity.normalize import Coded

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PassReport:
    """What one pass did, in numbers only (keys are personal data and are never logged)."""

    name: str
    pairs: int
    blocks: int
    oversized_blocks: int
    records_in_oversized_blocks: int


def compound_key_codes(
    frame: pd.DataFrame | Mapping[str, Coded],
    keys: Sequence[str],
    cache: dict[str, tuple[np.ndarray, int]] | None = None,
) -> np.ndarray:
    """One integer per row for the combination of `keys` (equal keys, equal integers); -1 where any key is
    missing. The integers are not dense: blocking only compares them.

    `cache` keeps each key column's codes between passes (most keys serve several passes)."""
    cache = {} if cache is None else cache
    n_rows = len(frame) if isinstance(frame, pd.DataFrame) else len(next(iter(frame.values())).codes)
    combined = np.zeros(n_rows, dtype=np.int64)
    missing = np.zeros(n_rows, dtype=bool)
    bound = 1  # combined < bound for rows with every key so far present
    for key in keys:
        if key not in cache and key not in frame:
            return np.full(n_rows, -1, dtype=np.int64)
        if key not in cache:
            codes, uniques = pd.factorize(frame[key], use_na_sentinel=True)
            cache[key] = (codes.astype(np.int64), len(uniques))
        codes, distinct = cache[key]
        missing |= codes < 0
        if bound * (distinct + 1) >= 2**62:  # renumber densely so the multiplication cannot overflow
            combined, uniques = pd.factorize(combined)
            combined, bound = combined.astype(np.int64), len(uniques)
        combined = combined * (distinct + 1) + codes
        bound *= distinct + 1
    combined[missing] = -1
    return combined


def pairs_within_blocks(
    codes: np.ndarray, max_block_size: int, is_new: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, int, int, int]:
    """All pairs of rows sharing a code (code -1 never pairs).

    With `is_new`, only pairs with at least one new row are made: inside a block new rows
    sort first and only new rows start pairs, so existing-vs-existing pairs never exist.
    Returns left, right, number of blocks, oversized blocks, rows in oversized blocks.
    """
    present = codes >= 0
    if is_new is not None:
        # Only blocks holding a new row make pairs: drop the other rows before sorting.
        present &= np.isin(codes, np.unique(codes[is_new & present]))
    present = np.flatnonzero(present)
    if is_new is None:
        order = present[np.argsort(codes[present], kind="stable")]
    else:
        order = present[np.lexsort((~is_new[present], codes[present]))]
    sorted_codes = codes[order]
    if len(sorted_codes) == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, 0, 0, 0
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    sizes = np.diff(np.r_[starts, len(sorted_codes)])
    if is_new is not None:
        new_per_block = np.add.reduceat(is_new[order].astype(np.int64), starts)
        useful = (sizes >= 2) & (new_per_block >= 1)
    else:
        useful = sizes >= 2
    oversized = useful & (sizes > max_block_size)
    keep_block = useful & ~oversized
    block_of_row = np.repeat(np.arange(len(starts)), sizes)
    position_in_block = np.arange(len(sorted_codes)) - starts[block_of_row]
    partners = np.where(keep_block[block_of_row], sizes[block_of_row] - 1 - position_in_block, 0)
    if is_new is not None:
        partners = np.where(is_new[order], partners, 0)
    partners = partners.astype(np.int64)
    total = int(partners.sum())
    first = np.repeat(np.arange(len(sorted_codes), dtype=np.int64), partners)
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(partners) - partners, partners)
    second = first + 1 + offsets
    return (
        order[first],
        order[second],
        int(keep_block.sum()),
        int(oversized.sum()),
        int(sizes[oversized].sum()),
    )


def _key_cache(normalized: pd.DataFrame | Mapping[str, Coded]) -> dict[str, tuple[np.ndarray, int]]:
    """Coded columns (see `normalize_coded`) are their own key codes; a frame's are computed on demand."""
    if isinstance(normalized, pd.DataFrame):
        return {}
    return {key: (column.codes, len(column.values)) for key, column in normalized.items()}


def candidate_pairs(
    normalized: pd.DataFrame | Mapping[str, Coded],
    passes: Sequence[BlockingPass],
    *,
    max_block_size: int,
    is_new: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, list[PassReport]]:
    """Union of the pairs of all passes, each pair once, as row positions (left, right).

    Dedupe mode: left < right. Incremental mode (`is_new` given): left is always a new row.
    """
    key_cache = _key_cache(normalized)
    n_rows = (
        len(normalized)
        if isinstance(normalized, pd.DataFrame)
        else len(next(iter(normalized.values())).codes)
    )
    pair_codes: list[np.ndarray] = []
    reports: list[PassReport] = []
    for blocking_pass in passes:
        codes = compound_key_codes(normalized, blocking_pass.keys, key_cache)
        cap = max_block_size if blocking_pass.max_block_size is None else blocking_pass.max_block_size
        left, right, blocks, oversized, oversized_rows = pairs_within_blocks(codes, cap, is_new)
        if is_new is None:
            left, right = np.minimum(left, right), np.maximum(left, right)
        else:
            both_new = is_new[right]
            left, right = (
                np.where(both_new, np.minimum(left, right), left),
                np.where(both_new, np.maximum(left, right), right),
            )
        pair_codes.append(left * n_rows + right)
        report = PassReport(blocking_pass.name, len(left), blocks, oversized, oversized_rows)
        reports.append(report)
        if oversized:
            log.info(
                "blocking pass %s skipped %d oversized blocks (%d records, cap %d)",
                report.name,
                oversized,
                oversized_rows,
                cap,
            )
    all_codes = np.unique(np.concatenate(pair_codes)) if pair_codes else np.empty(0, dtype=np.int64)
    log.info(
        "blocking: %d candidate pairs from %d passes over %d records", len(all_codes), len(passes), n_rows
    )
    return all_codes // n_rows, all_codes % n_rows, reports


def blocked_features(blocking_pass: BlockingPass, features: Collection[str]) -> frozenset[str]:
    """The compared features a pass's keys come from (see `KEY_FEATURES`)."""
    blocked: set[str] = set()
    for key in blocking_pass.keys:
        blocked.update(KEY_FEATURES.get(key, (key,) if key in features else ()))
    return frozenset(blocked)


def pass_members(
    normalized: pd.DataFrame | Mapping[str, Coded],
    passes: Sequence[BlockingPass],
    left: np.ndarray,
    right: np.ndarray,
    features: Collection[str],
) -> list[tuple[np.ndarray, frozenset[str]]]:
    """Per pass: which candidate pairs agree on all its keys, and the features it blocked on."""
    key_cache = _key_cache(normalized)
    members = []
    for blocking_pass in passes:
        codes = compound_key_codes(normalized, blocking_pass.keys, key_cache)
        left_codes = codes[left]
        members.append(
            ((left_codes >= 0) & (left_codes == codes[right]), blocked_features(blocking_pass, features))
        )
    return members
