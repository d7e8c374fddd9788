"""Moodle LMS: users, courses, enrolments and course completions.

Two routes, chosen by the connection (SETUP.md):
- the **database route** (production): ``host`` is a ``postgresql://`` URL of the LMS's database, read with a
  read-only login (``cdp.sources.moodle.database``); this is what a stock Moodle supports with setup only;
- the legacy ``local_cdp`` web-service route (``extra.route = "local_cdp"``, an ``http(s)://`` host): functions
  of a plugin that exists nowhere but in the sandbox (``cdp.sources.moodle.webservices``). It stays until the
  sandbox serves its Moodle as a database, and is refused for any other web-service host.
"""

from __future__ import annotations

from cdp.sources.base import SourceError, SourceSettings, Stream
from cdp.sources.moodle.database import database_streams, is_database_url
from cdp.sources.moodle.webservices import local_cdp_streams

SOURCE = "moodle"
LEGACY_ROUTE = "local_cdp"


def streams(settings: SourceSettings) -> list[Stream]:
    if is_database_url(settings.base_url):
        return list(database_streams(settings))
    if settings.extra.get("route") == LEGACY_ROUTE:
        return local_cdp_streams(settings)
    raise SourceError(
        "moodle: the connection's host must be the LMS database's URL (postgresql://user@host:port/dbname): "
        "core web services cannot list users or enrolments by modification time (see SETUP.md, "
        "'Hosts without database access')"
    )
