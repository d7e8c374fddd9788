"""Inviting a list through SurveyMonkey (issue 18, part 2): the documented way of API v3, step by step
(SurveyMonkey/public_api_docs, ``includes/_contacts.md`` and ``includes/_collectors.md``; the examples kept in
tests/vendor_material/surveymonkey/, see PROVENANCE.md):

1. ``POST /contact_lists`` ``{"name"}`` -> ``{"id", "name", "href"}``;
2. ``POST /contact_lists/{id}/contacts/bulk`` ``{"contacts": [{"email", "first_name", "last_name",
   "custom_fields": {"<n>": invitation id}}], "update_existing": true}`` -> ``{"succeeded": [contact], "invalids",
   "existing"}``: the invitation id goes in the contact custom field ``extra["invitation_field"]`` ("1".."6");
3. ``POST /surveys/{survey_id}/collectors`` ``{"type": "email", "name"}`` -> the collector;
4. ``POST /collectors/{id}/messages`` ``{"type": "invite", "subject"}`` -> the message (``status`` not_sent);
5. ``POST /collectors/{id}/messages/{id}/recipients/bulk`` ``{"contact_ids": [...]}`` -> ``{"succeeded": [{"id",
   "email", "href"}], "invalids", "existing", "bounced", "opted_out", "duplicate"}`` (the refused ones by email);
6. ``POST /collectors/{id}/messages/{id}/send`` ``{}`` ("If not specified, message sends immediately").

Responses of an email collector carry ``recipient_id`` (``/responses/bulk``), which is how an answer links back
to its invitation by exact key (``ops.survey_response_invitation``): the recipient id is kept as the hand-over's
``tool_ref``.

Assumptions where the reference is not explicit (written here, not guessed silently):
- The bulk recipients answer documents ``succeeded.id`` as "Contact id for the recipient" while its ``href`` is
  ``/collectors/{id}/recipients/{id}``: the recipient id is read from the ``href`` (the recipient resource), the
  ``id`` only when there is no ``href``.
- ``send`` is called once and never retried by the client: a retry after a lost answer would find the message
  sent. Any answer other than 2xx or a definite 400/404 refusal leaves the batch ``sending`` for a person to look
  at (GET the message's ``status``), never sent twice.
- The custom field's value is the invitation id; SurveyMonkey documents no way to read a contact custom field
  back on a response, so the field is for people reading SurveyMonkey, and the recipient id links the answer.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import requests

from cdp.sources.base import ContractError, SourceSettings, TransientError
from cdp.sources.invite import HandoverConfigError, Invitee, Outcome, Recorder
from cdp.sources.surveymonkey import SurveyMonkeyClient

log = logging.getLogger(__name__)

CUSTOM_FIELDS = ("1", "2", "3", "4", "5", "6")  # "Custom fields are keyed 1..6"
REFUSED = ("invalids", "existing", "bounced", "opted_out", "duplicate")
DEFAULT_SUBJECT = "We want your opinion"  # the reference's default subject


class SurveyMonkeyInviter:
    tool = "surveymonkey"

    def __init__(self, settings: SourceSettings) -> None:
        extra = settings.extra
        self.survey_id = str(extra.get("survey_id") or "")
        if not self.survey_id:
            raise HandoverConfigError(
                "surveymonkey connection: extra['survey_id'] (the survey to invite to) is not set"
            )
        self.invitation_field = str(extra.get("invitation_field") or "")
        if self.invitation_field not in CUSTOM_FIELDS:
            raise HandoverConfigError(
                "surveymonkey connection: extra['invitation_field'] must name the contact custom field (1-6) that "
                f"carries the invitation id; it is {extra.get('invitation_field')!r}"
            )
        if not settings.credential:
            raise HandoverConfigError("surveymonkey connection: no access token (the connection's password)")
        self.subject = str(extra.get("invite_subject") or DEFAULT_SUBJECT)
        self.client = SurveyMonkeyClient(settings)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.client.http.request("POST", path, json=body).json()
        if not isinstance(answer, dict):
            raise ContractError(f"surveymonkey: POST {path} answered {type(answer).__name__}, not an object")
        return answer

    def invite(self, invitees: list[Invitee], survey_key: str, record: Recorder) -> tuple[str, list[Outcome]]:
        name = f"cdp {survey_key} {datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"
        by_email = {i.email.strip().lower(): i for i in invitees}
        outcomes: dict[str, Outcome] = {}
        contact_list = self._post("/contact_lists", {"name": name})
        list_id = str(contact_list["id"])
        added = self._post(f"/contact_lists/{list_id}/contacts/bulk", {
            "contacts": [{"email": i.email, "first_name": i.given_name or "", "last_name": i.family_name or "",
                          "custom_fields": {self.invitation_field: i.invitation_id}} for i in invitees],
            "update_existing": True,
        })  # fmt: skip
        contacts: dict[str, str] = {}
        for contact in added.get("succeeded") or []:
            invitee = by_email.get(str(contact.get("email") or "").strip().lower())
            if invitee is not None:
                contacts[invitee.invitation_id] = str(contact["id"])
        for invitee in invitees:
            if invitee.invitation_id not in contacts:
                outcomes[invitee.invitation_id] = Outcome(
                    invitee.invitation_id, False,
                    reason=f"SurveyMonkey did not add the contact to list {list_id} (invalids/existing)",
                )  # fmt: skip
        collector = self._post(f"/surveys/{self.survey_id}/collectors", {"type": "email", "name": name})
        collector_id = str(collector["id"])
        message = self._post(
            f"/collectors/{collector_id}/messages", {"type": "invite", "subject": self.subject}
        )
        message_id = str(message["id"])
        batch = f"contact_list {list_id} collector {collector_id} message {message_id}"
        recipients: dict[str, str] = {}
        if contacts:
            answer = self._post(
                f"/collectors/{collector_id}/messages/{message_id}/recipients/bulk",
                {"contact_ids": sorted(contacts.values())},
            )
            for recipient in answer.get("succeeded") or []:
                invitee = by_email.get(str(recipient.get("email") or "").strip().lower())
                if invitee is None:
                    continue
                href = str(recipient.get("href") or "")
                recipients[invitee.invitation_id] = (
                    href.rstrip("/").rsplit("/", 1)[-1] if href else str(recipient["id"])
                )
            for kind in REFUSED:
                for entry in answer.get(kind) or []:
                    email = entry.get("email") if isinstance(entry, dict) else entry
                    invitee = by_email.get(str(email or "").strip().lower())
                    if invitee is not None and invitee.invitation_id not in recipients:
                        outcomes[invitee.invitation_id] = Outcome(
                            invitee.invitation_id, False, reason=f"SurveyMonkey refused the recipient: {kind}"
                        )
        missing = f"SurveyMonkey did not add the recipient to message {message_id}"
        for invitee in invitees:
            if invitee.invitation_id in contacts and invitee.invitation_id not in recipients:
                outcomes.setdefault(
                    invitee.invitation_id, Outcome(invitee.invitation_id, False, reason=missing)
                )
        reached = [Outcome(i, True, tool_ref=r) for i, r in recipients.items()]
        if not reached:
            return batch, list(outcomes.values())
        record(reached, "sending", batch)
        refused = self._send(collector_id, message_id)
        if refused:
            reached = [Outcome(o.invitation_id, False, reason=refused) for o in reached]
        return batch, reached + list(outcomes.values())

    def _send(self, collector_id: str, message_id: str) -> str | None:
        """Send once. None when sent; the reason when SurveyMonkey refused it for certain; raises otherwise."""
        path = f"/collectors/{collector_id}/messages/{message_id}/send"
        try:
            response = self.client.http.session.post(
                self.client.http.url(path), json={}, timeout=self.client.http.policy.timeout
            )
        except requests.RequestException as error:
            raise TransientError(
                f"surveymonkey: POST {path}: {type(error).__name__}; the message may be sent"
            ) from error
        if response.status_code < 300:
            return None
        if response.status_code in (400, 404):
            return f"SurveyMonkey refused to send message {message_id} (HTTP {response.status_code})"
        raise TransientError(
            f"surveymonkey: POST {path} answered HTTP {response.status_code}; the message may be sent"
        )
