"""Splink 5 (DuckDB) on the same data, with the comparisons of Splink's own FEBRL examples minus
soc_sec_id and blocking rules that scale to 1M generated people. Runs in benchmarks/.venv-dedupe
(see requirements.txt there).

    benchmarks/.venv-dedupe/bin/python benchmarks/dedupe/bench_splink.py febrl3
    benchmarks/.venv-dedupe/bin/python benchmarks/dedupe/bench_splink.py generated 1000000
    benchmarks/.venv-dedupe/bin/python benchmarks/dedupe/bench_splink.py generated 1000000 --febrl-example-rules

Blocking rules (`SCALED_BLOCKING_RULES`) were chosen from block sizes alone, never from the labels:
exact pre-filter comparison counts on the 1M generated file (Splink's
`count_comparisons_from_blocking_rules`, and sum c(c-1)/2 over the key groups). Each rule stays
under ~2.3M comparisons with no block above ~150 records at 1M, so the total is of the order of our
engine's 7.7M distinct candidate pairs; together they keep a pair whose names, or birth date, or
address survived the corruption. The FEBRL-example rules make 8.4M (given + surname), ~8M (swapped
names), 1.2M, 2.7M and 34.5M (postcode + initial) comparisons at 1M, and their EM session blocked on
postcode alone 524M: that is what went past 20 GiB on 2026-12-01.
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
COLUMNS = ["id", "given_name", "surname", "date_of_birth", "street_number", "address_1", "suburb", "postcode"]
MATCH_PROBABILITY = 0.9  # fixed before any run, as ResolveConfig.match_threshold

BIRTH_YEAR = "substr(date_of_birth, 1, 4)"
POSTCODE_AREA = "substr(postcode, 1, 2)"
SCALED_BLOCKING_RULES = [
    # names intact (birth year keeps the 500-strong "common given + common family" blocks small)
    block_on("given_name", "surname", BIRTH_YEAR),
    "l.given_name = r.surname and l.surname = r.given_name"
    " and substr(l.date_of_birth, 1, 4) = substr(r.date_of_birth, 1, 4)",
    # names intact, birth date corrupted
    block_on("given_name", "surname", POSTCODE_AREA),
    # birth date intact, one name corrupted
    block_on("date_of_birth", "substr(given_name, 1, 1)"),
    block_on("date_of_birth", "substr(surname, 1, 1)"),
    # address intact (postcode area survives a typo in the last two digits)
    block_on("street_number", "address_1", POSTCODE_AREA),
    block_on("date_of_birth", "suburb"),
    # one name and the postcode intact, birth date corrupted
    block_on("postcode", "surname"),
    block_on("postcode", "given_name"),
]
# EM sessions: each trains the comparisons its rule does not use, so together they train all five.
SCALED_TRAINING_RULES = [block_on("date_of_birth", POSTCODE_AREA), block_on("given_name", "surname")]


def febrl_example_rules(n_records: int) -> tuple[list, list]:
    """The rules of the 2026-12-01 runs (Splink's FEBRL examples), kept for the FEBRL comparison."""
    blocking_rules = [
        block_on("given_name", "surname"),
        "l.given_name = r.surname and l.surname = r.given_name",
        block_on("date_of_birth"),
        block_on("street_number", "address_1"),
        block_on("postcode"),
    ]
    if n_records > 100_000:  # Splink's note: add a condition to the broadest rule on large data
        blocking_rules[-1] = block_on("postcode", "substr(given_name, 1, 1)")
        blocking_rules[2] = block_on("date_of_birth", "substr(surname, 1, 1)")
    return blocking_rules, [block_on("date_of_birth"), block_on("postcode")]


def splink_frame(people):
    return people.rename(columns=SPLINK_COLUMNS)[COLUMNS]


def settings(blocking_rules: list) -> SettingsCreator:
    return SettingsCreator(
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


def run(
    people, *, febrl_example: bool = False, threshold: float | None = MATCH_PROBABILITY
) -> tuple[object, float]:
    """Train and predict; returns the pairs at p >= threshold (None: every comparison) and the seconds."""
    frame = splink_frame(people)
    if febrl_example:
        blocking_rules, training_rules = febrl_example_rules(len(frame))
    else:
        blocking_rules, training_rules = SCALED_BLOCKING_RULES, SCALED_TRAINING_RULES
    started = time.perf_counter()
    db_api = DuckDBAPI()
    linker = Linker(db_api.register(frame), settings(blocking_rules))
    linker.training.estimate_probability_two_random_records_match(
        [block_on("given_name", "surname", "date_of_birth")], recall=0.8
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=2)
    for rule in training_rules:
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    predictions = linker.inference.predict(threshold_match_probability=threshold).as_pandas_dataframe()
    return predictions, time.perf_counter() - started


def count_comparisons(people, *, febrl_example: bool = False, sample: float = 1.0) -> list[dict]:
    """Comparisons each prediction rule adds (marginal) and the running total, as Splink counts them."""
    from splink.blocking_analysis import count_comparisons_from_blocking_rules

    frame = splink_frame(people)
    rules = febrl_example_rules(len(frame))[0] if febrl_example else SCALED_BLOCKING_RULES
    records = count_comparisons_from_blocking_rules(
        DuckDBAPI().register(frame),
        blocking_rules=rules,
        link_type="dedupe_only",
        unique_id_column_name="id",
        record_sample_proportion=sample,
    )
    return [
        {
            "rule": record["blocking_rule"],
            "marginal": int(record["marginal_comparison_count"]),
            "cumulative": int(record["cumulative_comparison_count"]),
        }
        for record in records
    ]


def main() -> None:
    logging.disable(logging.WARNING)
    name = sys.argv[1]
    febrl_example = "--febrl-example-rules" in sys.argv
    if name == "generated":
        from generate import generate

        people = generate(int(sys.argv[2]))
    else:
        people = load(name)
    predictions, seconds = run(people, febrl_example=febrl_example)
    scores = pair_scores(predictions["id_l"].to_numpy(), predictions["id_r"].to_numpy(), people["id"])
    print(
        json.dumps(
            {
                "tool": "splink",
                "dataset": name,
                "rules": "febrl_example" if febrl_example else "scaled",
                "records": len(people),
                "seconds": round(seconds, 2),
                "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 3),
                **{k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
