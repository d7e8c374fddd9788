"""What the SurveyMonkey side lacks for our sync (``cdp sources check``): each finding names its SETUP.md step.

Checks, in the vendor's own terms (tests/vendor_material/surveymonkey/): the access token works
(``GET /users/me``); it was granted the scopes we read with (``scopes.granted``); the survey exists
(``GET /surveys/{id}``); the configured consent custom field is one of ``GET /contact_fields``.
"""

from __future__ import annotations

from cdp.sources.base import AuthError, SourceError, SourceSettings
from cdp.sources.check import Finding
from cdp.sources.surveymonkey import SOURCE, SurveyMonkeyClient

# Scope -> what we read with it (SurveyMonkey's scope table; responses_read_detail needs a paid plan).
SCOPES = {
    "responses_read_detail": "the survey's responses with their answers (/surveys/{id}/responses/bulk)",
    "responses_read": "the survey's response ids, to find responses deleted in SurveyMonkey (/surveys/{id}/responses)",
    "surveys_read": "the survey's questions (/surveys/{id}/details)",
    "contacts_read": "the contacts and their custom fields (/contacts/bulk, /contact_fields)",
    "collectors_read": "the email collectors' recipients (/collectors/{id}/recipients)",
}
STEP_TOKEN = "SETUP.md, 'The app and its token': a private app's access token in the connection's password"
STEP_SCOPES = "SETUP.md, 'The app and its token': tick the scope in the app's settings, then take a new token"
STEP_SURVEY = "SETUP.md, 'The survey': the survey's id in extra['survey_id']"
STEP_INVITE = "SETUP.md, 'Inviting the sample': extra['invitation_field'] and the write scopes"
# Scope -> what the hand-over (survey_sampling's hand_over task) does with it, asked when it is configured.
INVITE_SCOPES = {
    "contacts_write": "the hand-over's contact list and contacts (/contact_lists, /contact_lists/{id}/contacts/bulk)",
    "collectors_write": "the hand-over's email collector and invite message (/surveys/{id}/collectors, /messages)",
}
STEP_CONSENT = (
    "SETUP.md, 'The consent field': a contact custom field for consent, named in extra['consent_field']"
)


def setup_findings(settings: SourceSettings) -> list[Finding]:
    client = SurveyMonkeyClient(settings)
    try:
        me = client.get("/users/me")
    except AuthError as error:
        return [Finding(SOURCE, "access token", str(error), STEP_TOKEN)]
    except SourceError as error:
        return [Finding(SOURCE, "access token", f"/users/me could not be read: {error}", STEP_TOKEN)]
    findings: list[Finding] = []
    granted = set((me.get("scopes") or {}).get("granted") or ())
    for scope, purpose in SCOPES.items():
        if scope not in granted:
            findings.append(
                Finding(SOURCE, f"scope {scope}", f"the token was not granted {scope}, needed for {purpose}",
                        STEP_SCOPES)
            )  # fmt: skip
    if not client.survey_id:
        findings.append(Finding(SOURCE, "extra survey_id", "no survey is configured", STEP_SURVEY))
    elif "surveys_read" in granted:
        try:
            client.get(f"/surveys/{client.survey_id}")
        except SourceError as error:
            findings.append(Finding(SOURCE, f"survey {client.survey_id}", str(error), STEP_SURVEY))
    if not client.consent_field:
        findings.append(
            Finding(
                SOURCE, "extra consent_field", "no contact custom field is named for consent", STEP_CONSENT
            )
        )
    elif "contacts_read" in granted:
        try:
            consent = client.consent_field_of()
        except SourceError as error:
            findings.append(
                Finding(SOURCE, f"contact field {client.consent_field}", str(error), STEP_CONSENT)
            )
        else:
            findings += _invite_findings(settings, granted, consent["id"])
    return findings


def _invite_findings(settings: SourceSettings, granted: set[str], consent_id: str) -> list[Finding]:
    """When the hand-over is configured (extra['invitation_field']): its field and its write scopes."""
    field = str(settings.extra.get("invitation_field") or "")
    if not field:
        return []
    findings = [
        Finding(
            SOURCE, f"scope {scope}", f"the token was not granted {scope}, needed for {purpose}", STEP_INVITE
        )
        for scope, purpose in INVITE_SCOPES.items()
        if scope not in granted
    ]
    if field not in ("1", "2", "3", "4", "5", "6"):
        findings.append(
            Finding(SOURCE, "extra invitation_field", f"{field!r} is not a custom field 1-6", STEP_INVITE)
        )
    elif field == consent_id:
        findings.append(
            Finding(SOURCE, "extra invitation_field", "is the consent field: the hand-over would overwrite consent",
                    STEP_INVITE)
        )  # fmt: skip
    return findings
