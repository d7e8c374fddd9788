"""``cdp sources check`` for ReferralHero: the token is accepted and the campaign (list) exists."""

from __future__ import annotations

from cdp.sources.base import SourceSettings
from cdp.sources.check import Finding
from cdp.sources.referralhero import ReferralHeroClient
from cdp.sources.setup_checks import probe, quick

SOURCE = "referralhero"


def setup_findings(settings: SourceSettings) -> list[Finding]:
    findings: list[Finding] = []
    if not settings.extra.get("list_uuid"):
        return [
            Finding(
                SOURCE,
                "extra.list_uuid",
                "no campaign (list) uuid configured",
                "SETUP.md step 2: the campaign's uuid",
            )
        ]
    client = ReferralHeroClient(quick(settings))
    ok, data = probe(
        findings,
        SOURCE,
        f"list {settings.extra['list_uuid']}",
        "SETUP.md step 2: the campaign's uuid (dashboard → Campaign → Installation)",
        lambda: client.get("subscribers", {"page": 1}),
    )
    if ok and (not isinstance(data, dict) or "subscribers" not in data):
        findings.append(
            Finding(
                SOURCE,
                "subscribers",
                "the list answered without a subscribers listing",
                "SETUP.md step 2",
                "warning",
            )
        )
    return findings
