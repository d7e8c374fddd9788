"""Comparisons a blocking rule makes on a people file, before any filter: sum of c(c-1)/2 over the groups of
records sharing the rule's keys, and the largest group. How the Splink rules in `bench_splink.py` were
chosen (from sizes alone; no label is read).

    .venv/bin/python benchmarks/dedupe/block_sizes.py benchmarks/.data/side_by_side/generated_1000000_seed7.csv
"""

from __future__ import annotations

import sys

import pandas as pd

RULES = [
    # Splink's FEBRL-example rules (the 2026-12-01 runs) and their EM sessions
    ("given_name", "family_name"),
    ("date_of_birth",),
    ("date_of_birth", "family_initial"),
    ("street_number", "street"),
    ("postcode",),
    ("postcode", "given_initial"),
    # candidates for 1M
    ("given_name", "family_name", "birth_year"),
    ("given_name", "family_name", "postcode_area"),
    ("date_of_birth", "given_initial"),
    ("date_of_birth", "postcode_area"),
    ("date_of_birth", "locality"),
    ("date_of_birth", "street_number"),
    ("street_number", "street", "postcode_area"),
    ("street_number", "street", "postcode"),
    ("street_number", "postcode"),
    ("postcode", "family_name"),
    ("postcode", "given_name"),
    ("street", "postcode"),
    ("locality", "street"),
]


def main() -> None:
    people = pd.read_csv(sys.argv[1], dtype=str, keep_default_na=False, na_values=[""])
    people["birth_year"] = people["date_of_birth"].str[:4]
    people["postcode_area"] = people["postcode"].str[:2]
    people["given_initial"] = people["given_name"].str[:1]
    people["family_initial"] = people["family_name"].str[:1]
    print(f"{len(people):,} records")
    print("| rule | comparisons before filters | largest block |")
    print("|---|---|---|")
    for rule in RULES:
        sizes = people.dropna(subset=list(rule)).groupby(list(rule)).size()
        print(f"| {' + '.join(rule)} | {int((sizes * (sizes - 1) // 2).sum()):,} | {int(sizes.max())} |")


if __name__ == "__main__":
    main()
