"""Contract of the Galaxy Digital connector against the sandbox: each stream's window reads every record
whose updated time falls in it, page by page (`since_id`), none twice, and its count agrees."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from cdp.sources.base import SourceSettings, Stream
from cdp.sources.registry import stream
from cdp_sandbox import volunteers
from cdp_sandbox.generator import World


def read_all(s: Stream, since: datetime, until: datetime) -> tuple[list[dict], int]:
    pages = list(s.read(since, until))
    assert all(isinstance(page, list) and page for page in pages), "pages must be non-empty lists"
    return [record for page in pages for record in page], len(pages)


WINDOW = (datetime(2023, 3, 1, tzinfo=UTC), datetime(2023, 9, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("source", "name"), [("galaxy", "users"), ("galaxy", "responses"), ("galaxy", "hours")]
)
def test_galaxy_window_read_pages_to_the_end_and_matches_truth(
    world: World, settings_for: Callable[..., SourceSettings], source: str, name: str
) -> None:
    s = stream(source, name, settings_for(source))
    table = volunteers.of(world).tables[name]
    expected = {table.id_of(int(i)) for i in table.window(*(int(moment.timestamp()) for moment in WINDOW))}

    records, pages = read_all(s, *WINDOW)

    got = [record[s.primary_key] for record in records]
    assert len(got) == len(set(got)), "no record may be served twice within one read"
    assert set(got) == expected and expected
    if len(expected) > 150:  # Galaxy's largest page
        assert pages > 1
    assert s.count(*WINDOW) == len(expected)
