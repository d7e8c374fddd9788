"""Splink 5 (DuckDB) on the same data, with the settings of Splink's own FEBRL examples
minus soc_sec_id. Runs in benchmarks/.venv-dedupe (see requirements.txt there).

    benchmarks/.venv-dedupe/bin/python benchmarks/dedupe/bench_splink.py febrl3
    benchmarks/.venv-dedupe/bin/python benchmarks/dedupe/bench_splink.py generated 1000000
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import splink.comparison_library as cl  # noqa: E402
from febrl_data import load, pair_scores  # noqa: E402
from splink import DuckDBAPI, Linker, SettingsCreator, block_on  # noqa: E402

SPLINK_COLUMNS = {"family_name": "surname", "street": "address_1", "locality": "suburb"}


def run(people) -> tuple[object, float]:
    frame = people.rename(columns=SPLINK_COLUMNS)[
        ["id", "given_name", "surname", "date_of_birth", "street_number", "address_1", "suburb", "postcode"]
    ]
    blocking_rules = [
        block_on("given_name", "surname"),
        "l.given_name = r.surname and l.surname = r.given_name",
        block_on("date_of_birth"),
        block_on("street_number", "address_1"),
        block_on("postcode"),
    ]
    if len(frame) > 100_000:  # Splink's note: add a condition to the broadest rule on large data
        blocking_rules[-1] = block_on("postcode", "substr(given_name, 1, 1)")
        blocking_rules[2] = block_on("date_of_birth", "substr(surname, 1, 1)")
    settings = SettingsCreator(
        unique_id_column_name="id",
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=blocking_rules,
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison(
                "date_of_birth", input_is_string=True, datetime_format="%Y%m%d", invalid_dates_as_null=True
            ),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]).configure(term_frequency_adjustments=True),
        ],
    )
    started = time.perf_counter()
    db_api = DuckDBAPI()
    linker = Linker(db_api.register(frame), settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("given_name", "surname", "date_of_birth")], recall=0.8
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=2)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("postcode"))
    predictions = linker.inference.predict(threshold_match_probability=0.9).as_pandas_dataframe()
    return predictions, time.perf_counter() - started


def main() -> None:
    logging.disable(logging.WARNING)
    name = sys.argv[1]
    if name == "generated":
        from generate import generate

        people = generate(int(sys.argv[2]))
    else:
        people = load(name)
    predictions, seconds = run(people)
    scores = pair_scores(predictions["id_l"].to_numpy(), predictions["id_r"].to_numpy(), people["id"])
    print(
        json.dumps(
            {
                "tool": "splink",
                "dataset": name,
                "records": len(people),
                "seconds": round(seconds, 2),
                "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 3),
                **{k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
