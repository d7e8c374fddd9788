import numpy as np
import pandas as pd

from cdp.identity.blocking import candidate_pairs, pairs_within_blocks
from cdp.identity.config import BlockingPass


def test_pairs_within_blocks_makes_every_pair_once():
    codes = np.array([0, 1, 0, 0, -1, 1])
    left, right, blocks, oversized, _ = pairs_within_blocks(codes, max_block_size=10)
    found = {tuple(sorted(p)) for p in zip(left, right, strict=True)}
    assert found == {(0, 2), (0, 3), (2, 3), (1, 5)}
    assert (blocks, oversized) == (2, 0)


def test_oversized_blocks_are_skipped():
    codes = np.array([0] * 5 + [1] * 2)
    left, _, _, oversized, rows = pairs_within_blocks(codes, max_block_size=4)
    assert len(left) == 1 and oversized == 1 and rows == 5


def test_incremental_blocks_only_pair_new_rows():
    frame = pd.DataFrame({"k": ["a"] * 6})
    is_new = np.array([False, True, False, False, True, False])
    left, right, _ = candidate_pairs(frame, [BlockingPass("k", ("k",))], max_block_size=100, is_new=is_new)
    assert is_new[left].all()
    assert len(left) == 1 + 2 * 4  # new-new once, each new with the four existing
