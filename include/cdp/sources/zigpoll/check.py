"""``cdp sources check`` for Zigpoll: the key and the account, the poll, and the two things Zigpoll's spec
does not promise but the organisation's setup must give: collected emails (``/emails``) and the learner's
Moodle id in the responses' ``metadata``."""

from __future__ import annotations

from typing import Any

from cdp.sources.base import SourceSettings, classify_by_status
from cdp.sources.check import Finding
from cdp.sources.http import HttpClient
from cdp.sources.setup_checks import probe, quick

SOURCE = "zigpoll"
SAMPLE = 50  # recent responses looked at for the metadata convention


def setup_findings(settings: SourceSettings) -> list[Finding]:
    findings: list[Finding] = []
    account = str(settings.extra.get("account_id") or "")
    if not account:
        return [Finding(SOURCE, "extra.account_id", "no account id configured", "SETUP.md: the connection")]
    http = HttpClient(
        SOURCE,
        quick(settings),
        classify=classify_by_status(SOURCE, "API key"),
        headers={"Authorization": settings.credential},
    )

    def get(path: str, **params: Any) -> Any:
        return http.get_json(path, params=params)

    ok, _ = probe(
        findings,
        SOURCE,
        f"account {account}",
        "SETUP.md: the connection (account_id)",
        lambda: get("/account", accountId=account),
        auth_step="SETUP.md: the connection (API key)",
    )
    if not ok:
        return findings
    poll = settings.extra.get("poll_id")
    if poll:
        probe(
            findings,
            SOURCE,
            f"poll {poll}",
            "SETUP.md: the connection (poll_id)",
            lambda: get("/poll", pollId=poll),
        )
    ok, emails = probe(
        findings,
        SOURCE,
        "/emails",
        "SETUP.md: what the account needs (an email slide)",
        lambda: get("/emails", accountId=account, limit=1),
    )
    if ok and not (isinstance(emails, dict) and emails.get("data")):
        findings.append(
            Finding(
                SOURCE,
                "/emails",
                "no email collected in this account: participants cannot be linked to people",
                "SETUP.md: what the account needs (an email slide)",
                "warning",
            )
        )
    params: dict[str, Any] = {"accountId": account, "limit": SAMPLE}
    if poll:
        params["pollId"] = poll
    ok, responses = probe(
        findings, SOURCE, "/responses", "SETUP.md: the connection", lambda: get("/responses", **params)
    )
    rows = responses.get("data") if ok and isinstance(responses, dict) else None
    if rows and not any(
        isinstance(r.get("metadata"), dict) and r["metadata"].get("moodle_user_id") for r in rows
    ):
        findings.append(
            Finding(
                SOURCE,
                "response metadata.moodle_user_id",
                f"none of the {len(rows)} latest responses carries the learner's Moodle id",
                "SETUP.md: what the account needs (metadata.moodle_user_id in the embed)",
                # A warning until the participants stream is rebuilt on /emails (issue 17): today's connector
                # links a participant through its own metadata, so responses without it still land.
                "warning",
            )
        )
    return findings
