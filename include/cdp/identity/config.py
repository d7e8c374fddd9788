"""Settings of the identity-resolution engine.

Thresholds are fixed here, before any evaluation, so that benchmark figures are
not tuned on the labels they are scored against.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: The canonical roles a people table may carry; any may be missing.
ROLES: tuple[str, ...] = (
    "id",
    "given_name",
    "family_name",
    "date_of_birth",
    "email",
    "phone",
    "street_number",
    "street",
    "address_line2",
    "locality",
    "postcode",
    "region",
    "other_id",
)

MATCH = "match"
POSSIBLE_MATCH = "possible_match"
NON_MATCH = "non_match"


@dataclass(frozen=True)
class BlockingPass:
    """One blocking pass: records sharing all `keys` (non-empty) become candidate pairs."""

    name: str
    keys: tuple[str, ...]
    #: Cap on this pass's block size; None uses `ResolveConfig.max_block_size`.
    max_block_size: int | None = None


#: The compared features each blocking key is derived from. A pass's pairs agree on its keys by
#: construction, so those features say nothing about matches inside that pass (see
#: `cdp.identity.model.fit_by_pass`). A key missing here that is itself a feature maps to itself.
KEY_FEATURES: dict[str, tuple[str, ...]] = {
    "names_phonetic_unordered": ("given_name", "family_name"),
    "name_tokens": ("given_name", "family_name"),
    "given_canonical": ("given_name",),
    "given_phonetic": ("given_name",),
    "given_initial": ("given_name",),
    "family_phonetic": ("family_name",),
    "family_initial": ("family_name",),
    "birth_year": ("date_of_birth",),
    "birth_decade": ("date_of_birth",),
    "dob_unordered": ("date_of_birth",),
    "dob_unordered_tail": ("date_of_birth",),
    "street_phonetic": ("street",),
    "street_initial": ("street",),
    "locality_initial": ("locality",),
    "postcode_prefix": ("postcode",),
}


DEFAULT_BLOCKING_PASSES: tuple[BlockingPass, ...] = (
    BlockingPass("names_phonetic_year", ("names_phonetic_unordered", "birth_year")),
    BlockingPass(
        "names_phonetic_locality", ("names_phonetic_unordered", "locality_initial", "postcode_prefix")
    ),
    BlockingPass("name_tokens_year", ("name_tokens", "birth_decade")),
    BlockingPass("dob_initials", ("dob_unordered", "given_initial", "family_initial")),
    BlockingPass("dob_number", ("date_of_birth", "street_number")),
    BlockingPass("dob_postcode_area", ("date_of_birth", "postcode_prefix")),
    BlockingPass("postcode_number", ("postcode", "street_number", "street_initial")),
    BlockingPass("postcode_names", ("postcode", "family_phonetic", "given_initial")),
    BlockingPass("street_postcode", ("street", "postcode")),
    BlockingPass("street_number_locality", ("street_phonetic", "street_number", "locality_initial")),
    BlockingPass("locality_family", ("locality", "family_phonetic", "given_initial")),
    BlockingPass("family_dob_month", ("family_phonetic", "birth_year", "dob_unordered_tail")),
    BlockingPass("given_year_postcode", ("given_phonetic", "birth_year", "postcode")),
    # Address passes that survive one corrupted key each (a transposed postcode digit, a missing or
    # misspelt street, address lines in the other order, a replaced name): FEBRL's corruptions, and
    # what movers, typists and forms with two address lines do to real addresses. A house number in a
    # postcode or town is one household or building: a block of more than 12 people there is a big
    # building or a common number, no evidence, so those passes skip blocks above 12. They were left
    # out while m came from one EM over all pairs (the strangers they add pushed it further off); with
    # m learned per pass they cost no precision at 1M (benchmarks/dedupe/RESULTS.md, 2026-12-02).
    BlockingPass("postcode_number_only", ("postcode", "street_number"), max_block_size=12),
    BlockingPass("locality_number", ("locality", "street_number"), max_block_size=12),
    BlockingPass("street_number", ("street", "street_number"), max_block_size=12),
    BlockingPass("locality_street", ("locality", "street")),
    BlockingPass("dob_locality", ("date_of_birth", "locality")),
    BlockingPass("email", ("email",)),
    BlockingPass("phone", ("phone",)),
    BlockingPass("other_id", ("other_id",)),
)


@dataclass(frozen=True)
class ResolveConfig:
    """Everything the engine needs besides the data; the defaults are the production settings."""

    #: Pairs at or above this match probability are `match` (unless a guard rail caps them).
    match_threshold: float = 0.9
    #: Pairs at or above this (and below `match_threshold`) go to the review queue.
    possible_match_threshold: float = 0.3
    #: Region used to read phone numbers written without a country code.
    default_region: str = "US"
    blocking_passes: tuple[BlockingPass, ...] = DEFAULT_BLOCKING_PASSES
    #: Blocks larger than this are skipped (and logged): they are common values, not evidence.
    max_block_size: int = 200
    #: Random pairs drawn to estimate how often non-matches agree by chance (u probabilities) below
    #: the exact level. With the exact level counted from value frequencies, 300k pairs move no u by
    #: more than 0.15 bit from a 1M-pair estimate on FEBRL3/FEBRL4 (benchmarks/dedupe/RESULTS.md).
    u_sample_pairs: int = 300_000
    #: Take the exact level of u from value frequencies (no sampling error); the sample then only
    #: splits the rest between the lower levels (see `cdp.identity.model.estimate_u`).
    u_exact_from_frequencies: bool = True
    em_max_iterations: int = 60
    #: Estimate m one blocking pass at a time, leaving out the features the pass blocked on (Splink's
    #: way), and pool the passes. One EM over all candidate pairs at once drifts at 1M: strangers who
    #: agree on a pass's keys (same family name and birth date) are far more alike than the random
    #: pairs behind u, so EM counts them as matches and learns that matches often disagree on the rest.
    m_by_blocking_pass: bool = True
    #: Passes with fewer candidate pairs than this are not used to estimate m (too few to fit).
    m_min_pass_pairs: int = 200
    random_seed: int = 42
    #: Household/contact and name-only rules that cap `match` at `possible_match`.
    apply_guard_rails: bool = True
    #: Keep non-matching candidate pairs in the output (large; for diagnostics only).
    include_non_matches: bool = False
    #: Floor for term frequencies, so that one rare spelling cannot dominate a score.
    min_term_frequency: float = 1e-5
    tf_adjusted_features: tuple[str, ...] = field(default=("given_name", "family_name", "locality", "street"))
