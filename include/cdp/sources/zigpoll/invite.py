"""Links to a Zigpoll survey carrying the invitation id (issue 18, part 2).

Zigpoll documents metadata only through its embed: the page that shows the poll sets
``window.Zigpoll.user = {id, metadata: {...}}`` (docs.zigpoll.com, "Participant Metadata"), and Zigpoll keeps that
metadata on each response (``metadata``), where ``ops.survey_response_invitation`` reads ``metadata.invitation_id``.
We found no documented URL parameter that Zigpoll itself turns into metadata. So, as an assumption written here
and in SETUP.md: the organisation's page that embeds the poll (``extra["survey_page_url"]``) reads the query
parameter ``invitation_id`` and passes it as ``window.Zigpoll.user.metadata.invitation_id``. The link is that page
with ``?invitation_id=<id>`` (or ``&`` when the page URL has a query already). The hand-over delivers the links as
a segment for the e-mail or CRM tool (``cdp.surveys.handover.SegmentInviter``): Zigpoll sends no e-mail itself.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from cdp.sources.base import SourceSettings
from cdp.sources.invite import INVITATION_KEY, HandoverConfigError, required


class ZigpollLinks:
    tool = "zigpoll"

    def __init__(self, settings: SourceSettings) -> None:
        page = required(settings.extra, "survey_page_url", "zigpoll", "the page that embeds the poll")
        parts = urlsplit(page)
        if parts.scheme != "https" or not parts.netloc or parts.fragment:
            raise HandoverConfigError(
                f"zigpoll connection: extra['survey_page_url'] {page!r} is not an https page address without #fragment"
            )
        self.page = page

    def link(self, invitation_id: str) -> str:
        joiner = "&" if urlsplit(self.page).query else "?"
        return f"{self.page}{joiner}{INVITATION_KEY}={quote(invitation_id, safe='')}"
