"""Prefilled Typeform links for survey invitations (issue 18, part 2).

Typeform sends no invitations to a list itself: each invitation gets the form's share link with the invitation
id in a hidden field, ``https://<form host>/to/<form_id>#invitation_id=<id>`` (Typeform's hidden fields are
passed in the URL fragment, ``#name=value&...``), and the hand-over delivers the links as a segment for the
e-mail or CRM tool (``cdp.surveys.handover.SegmentInviter``). The answer comes back with ``hidden.invitation_id``,
which ``ops.survey_response_invitation`` links to the invitation by exact key.

Configuration (the ``typeform`` connection's extras): ``form_id`` (the same form the sync reads, SETUP.md) and
``form_host`` (the host of the form's share link, e.g. ``form.typeform.com`` or ``<account>.typeform.com``;
``form.typeform.com`` when unset: an assumption, Typeform serves every form there). The form must have the
hidden field ``invitation_id`` beside ``learner_id`` (SETUP.md step 2); without it Typeform drops the value and
the answer cannot link back.
"""

from __future__ import annotations

from urllib.parse import quote

from cdp.sources.base import SourceSettings
from cdp.sources.invite import INVITATION_KEY, HandoverConfigError, required

DEFAULT_FORM_HOST = "form.typeform.com"


class TypeformLinks:
    tool = "typeform"

    def __init__(self, settings: SourceSettings) -> None:
        self.form_id = required(settings.extra, "form_id", "typeform", "the form the invitations answer")
        host = (
            str(settings.extra.get("form_host") or DEFAULT_FORM_HOST)
            .strip()
            .removeprefix("https://")
            .strip("/")
        )
        if not host or "/" in host or "#" in host or "?" in host:
            raise HandoverConfigError(f"typeform connection: extra['form_host'] {host!r} is not a host name")
        self.host = host

    def link(self, invitation_id: str) -> str:
        return f"https://{self.host}/to/{quote(self.form_id, safe='')}#{INVITATION_KEY}={quote(invitation_id, safe='')}"
