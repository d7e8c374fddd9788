"""What ``cdp sources check`` reports: one finding per thing the vendor side lacks.

Each vendor package may offer ``check.py`` with ``setup_findings(settings: SourceSettings) ->
list[Finding]``: it authenticates, checks permissions and that every object, field and custom field
we read or write exists, and says for each missing piece the setup step (from the vendor's SETUP.md)
that provides it. A vendor without ``check.py`` is reported as "not checked", never as fine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["missing", "warning"]

#: How a check says it could not look (the vendor answered 5xx or rate-limited): a warning, never "missing",
#: so an outage does not fail cdp_sync's check_sources task; the stream tasks meet the outage themselves.
UNCHECKED = "could not check now (the vendor is failing or rate-limiting; try again)"


@dataclass(frozen=True)
class Finding:
    """One missing or doubtful piece of a source's setup, with the step that fixes it."""

    source: str
    item: str  # what is checked, e.g. "field Contact.CDP_Person_Id__c" or "credential"
    problem: str  # what is wrong, in the vendor's own words where possible
    setup_step: str  # what the organisation's admin does about it (a SETUP.md section)
    severity: Severity = "missing"
