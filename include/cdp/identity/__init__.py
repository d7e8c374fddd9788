"""In-memory identity resolution: normalise, block, compare, classify people records.

No database access and no Airflow imports; the nightly dedupe job wires this to the
warehouse, the review queue and merges.
"""

from cdp.identity.config import MATCH, NON_MATCH, POSSIBLE_MATCH, ROLES, BlockingPass, ResolveConfig
from cdp.identity.resolve import add_arguments, dedupe_csv, main, resolve, run

__all__ = [
    "MATCH",
    "NON_MATCH",
    "POSSIBLE_MATCH",
    "ROLES",
    "BlockingPass",
    "ResolveConfig",
    "add_arguments",
    "dedupe_csv",
    "main",
    "resolve",
    "run",
]
