"""``cdp sources check`` for Typeform: the token is accepted on the configured host (and, when it is not,
whether the other region's host accepts it: EU accounts live on ``api.eu.typeform.com``), the form exists,
has the hidden field ``learner_id`` and the questions whose ``ref`` the sync reads.

Typeform's Create API reference: ``GET /forms/{form_id}`` answers the form definition, with ``hidden`` (the
hidden field names) and ``fields`` (each with ``id``, ``ref``, ``type``, ``title``); 404 ``FORM_NOT_FOUND``.
"""

from __future__ import annotations

from dataclasses import replace

from cdp.sources.base import AuthError, SourceError, SourceSettings, classify_by_status
from cdp.sources.check import Finding
from cdp.sources.http import HttpClient
from cdp.sources.setup_checks import probe, quick

SOURCE = "typeform"
HOSTS = {
    "https://api.typeform.com": "https://api.eu.typeform.com",
    "https://api.eu.typeform.com": "https://api.typeform.com",
}
HIDDEN_FIELDS = ("learner_id",)
FIELD_REFS = ("email", "age", "may_contact")


def _client(settings: SourceSettings) -> HttpClient:
    return HttpClient(
        SOURCE,
        quick(settings),
        classify=classify_by_status(SOURCE, "token"),
        headers={"Authorization": f"Bearer {settings.credential}"},
    )


def _other_region_accepts(settings: SourceSettings, form_id: str) -> str | None:
    other = HOSTS.get(settings.base_url.rstrip("/"))
    if other is None:
        return None
    try:
        _client(replace(settings, base_url=other)).get_json(f"/forms/{form_id}")
    except (AuthError, SourceError):
        return None
    return other


def setup_findings(settings: SourceSettings) -> list[Finding]:
    form_id = str(settings.extra.get("form_id") or "")
    if not form_id:
        return [Finding(SOURCE, "extra.form_id", "no form id configured", "SETUP.md: the connection")]
    findings: list[Finding] = []
    try:
        form = _client(settings).get_json(f"/forms/{form_id}")
    except AuthError as error:
        other = _other_region_accepts(settings, form_id)
        if other is not None:
            return [
                Finding(
                    SOURCE,
                    "host",
                    f"the token is refused on {settings.base_url} but accepted on {other}: "
                    "the account is in the other region",
                    f"SETUP.md step 1: set host to {other}",
                )
            ]
        return [Finding(SOURCE, "credential", str(error), "SETUP.md step 1: a token that may read responses")]
    except SourceError as error:
        return [Finding(SOURCE, f"form {form_id}", str(error), "SETUP.md: the connection (form_id)")]
    if not isinstance(form, dict):
        return [
            Finding(
                SOURCE, f"form {form_id}", "answered without a form definition", "SETUP.md: the connection"
            )
        ]
    hidden = set(form.get("hidden") or [])
    for name in HIDDEN_FIELDS:
        if name not in hidden:
            findings.append(
                Finding(
                    SOURCE,
                    f"hidden field {name}",
                    "the form has no such hidden field: every response would be quarantined",
                    f"SETUP.md step 2: the hidden field {name}",
                )
            )
    refs = {field.get("ref") for field in form.get("fields") or [] if isinstance(field, dict)}
    for ref in FIELD_REFS:
        if ref not in refs:
            findings.append(
                Finding(
                    SOURCE,
                    f"question ref {ref}",
                    "no question of the form has this ref",
                    f"SETUP.md step 3: the question refs ({', '.join(FIELD_REFS)})",
                )
            )
    probe(
        findings,
        SOURCE,
        "responses",
        "SETUP.md step 1: a token that may read responses",
        lambda: _client(settings).get_json(f"/forms/{form_id}/responses", params={"page_size": 1}),
    )
    return findings
