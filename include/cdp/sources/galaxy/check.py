"""``cdp sources check`` for Galaxy Digital: the key logs in, and each listing we read answers (a 404 for an
empty listing is fine)."""

from __future__ import annotations

from cdp.sources.base import SourceSettings
from cdp.sources.check import Finding
from cdp.sources.galaxy import GalaxyClient
from cdp.sources.setup_checks import probe, quick

SOURCE = "galaxy"


def setup_findings(settings: SourceSettings) -> list[Finding]:
    findings: list[Finding] = []
    client = GalaxyClient(quick(settings))
    ok, _ = probe(
        findings,
        SOURCE,
        "login",
        "SETUP.md step 1: API key (the login must answer with a token)",
        client.login,
        auth_step="SETUP.md step 1: API key (the login must answer with a token)",
    )
    if not ok:
        return findings
    for resource in ("users", "responses", "hours"):
        probe(
            findings,
            SOURCE,
            f"/{resource}",
            f"SETUP.md step 2: read access to /{resource}",
            lambda resource=resource: client.page(resource, {"per_page": 1, "show_inactive": "Yes"}),
            auth_step=f"SETUP.md step 2: read access to /{resource}",
        )
    return findings
