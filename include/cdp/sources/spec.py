"""What a source declares about each of its streams and about its API budget.

A source folder (``cdp/sources/<vendor>/``) declares its streams in ``specs.py``: how a record is checked,
which SQL files move it into ``core`` (the folder's ``sql/``; names starting with ``_`` are the sync
engine's shared SQL in ``sql/sync/``), which streams it must follow (``after``) and its pool. The sync
engine reads these declarations; nothing here imports the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cdp.sources.validation import Check

SOURCES_DIR = Path(__file__).resolve().parent  # cdp/sources/<source>/ is each source's folder

# Waves: people and reference rows (users, contacts, courses) first, then the activity that points to them
# (enrollments, completions, donations); every activity stream follows every people/reference stream.
PEOPLE_AND_REFERENCE = 1
ACTIVITY = 2

# The sync engine's shared SQL (sql/sync/), named in a stream's transforms.
RESOLVE_PEOPLE = "_resolve_people.sql"
LAND_CONSENT = "_land_consent.sql"
REGISTRATION_CONSENT = "_registration_consent.sql"  # a registration form's consent questions
# Responses deleted in a survey tool that shows no deletions: those missing from the connector's complete id
# listing of the survey (listed_ids + sql_params). SURVEY_LISTING_DEFAULTS judge nothing when it listed nothing.
SURVEY_REMOVALS = "_survey_responses_removed.sql"
SURVEY_LISTING_DEFAULTS = (("listing_survey_id", ""), ("listing_settled_before", "-infinity"))


@dataclass(frozen=True)
class StreamSpec:
    source: str
    stream: str
    entity: str  # the core table it feeds; also the name of the Airflow Asset it updates
    wave: int
    check: Check
    # SQL files run in order on the temp table sync_batch: the source folder's sql/<name>, or for a name
    # starting with "_", the engine's shared sql/sync/<name>.
    transforms: tuple[str, ...]
    person_source: str | None = None  # key space in core.person_source_id for records that are people
    # Extra named parameters for the SQL files. `people_update`: how a known person's values change when a
    # record of theirs arrives again: 'overwrite' (the source keeps the person's current details) or 'fill'
    # (only missing values are filled in, for sources whose details are typed afresh each time).
    params: tuple[tuple[str, str], ...] = ()
    # Re-read at least this far before the watermark: for a source whose records arrive late by design
    # (finance drops a month's ledger after the month), so lines dated before the watermark still land.
    lookback: timedelta = timedelta(0)
    # Stream keys ("source.stream") this stream must sync after, because its rows point to theirs or its
    # people resolve against theirs. An activity stream also follows every people/reference stream (its
    # wave); see cdp.sources.order.
    after: tuple[str, ...] = ()
    # Where the count diff finds a record of the stream in core, when that is not the entity keyed by
    # (source, source_record_id): a table or view with those two columns, and the source value keying it.
    landed_in: tuple[str, str] | None = None

    @property
    def key(self) -> str:
        return f"{self.source}.{self.stream}"


@dataclass(frozen=True)
class VendorPool:
    """An Airflow pool: its slots cap how many of the vendor's calls run at once across every DAG."""

    name: str
    slots: int
    description: str


# Airflow's own pool, for a source that calls no vendor API (files dropped in a folder, pushed webhooks):
# it needs no pool of its own and none is created for it.
DEFAULT_POOL = VendorPool("default_pool", 128, "Airflow's own pool: no vendor API budget to keep")
