"""What a survey tool's inviter (``cdp.sources.<tool>.invite``) and the hand-over (``cdp.surveys.handover``)
exchange: the invitations due, with contact details, and what the tool answered for each. Kept in the sources
layer so that a vendor's inviter needs nothing above it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Protocol

#: The name every tool carries the invitation id under (Typeform hidden field, Zigpoll metadata key): the
#: warehouse view ops.survey_response_invitation reads it back by exact key.
INVITATION_KEY = "invitation_id"


class HandoverConfigError(ValueError):
    """A setting the hand-over needs is missing or unusable: the message names the setting."""


@dataclass(frozen=True)
class Invitee:
    """One invitation due for hand-over, with the contact details mart.outreach_eligible holds for its person now
    (read only inside the definer function ops.survey_handover_due, which re-checks the consent)."""

    invitation_id: str
    sample_week: date
    email: str
    given_name: str | None
    family_name: str | None


@dataclass(frozen=True)
class Outcome:
    """What the tool answered for one invitation: its id for it (``tool_ref``), or why not (``reason``)."""

    invitation_id: str
    ok: bool
    tool_ref: str | None = None
    reason: str | None = None


class Recorder(Protocol):
    def __call__(self, outcomes: Iterable[Outcome], state: str, batch_ref: str | None) -> None: ...


def required(extra: object, key: str, source: str, what: str) -> str:
    """A connection extra the hand-over cannot do without, or a clear error naming it."""
    value = str((extra or {}).get(key) or "").strip()  # type: ignore[attr-defined]
    if not value:
        raise HandoverConfigError(f"{source} connection: extra[{key!r}] ({what}) is not set")
    return value
