"""The hand-over of recorded survey invitations to the organisation's survey tool (issue 18, part 2).

After the weekly draw (``cdp.surveys.sampling``) has recorded who is asked, ``hand_over`` gives each invitation
not yet handed over to the configured tool and records what happened in ``ops.survey_handover`` (one row per
invitation, its key) and ``ops.survey_handover_attempt`` (every attempt, append-only):

- ``ops.survey_handover_due`` (a definer function) re-checks consent now: an invitation whose person left
  ``mart.outreach_eligible`` for surveys since the draw is recorded ``not_eligible`` with the reason and never
  handed over; it returns the contact details of the others: never handed over, or failed before (a retry).
- The tool's inviter (``cdp.sources.<tool>.invite``) hands the batch over through the tool's documented way of
  inviting a list, and says per invitation what the tool answered (its id for it, or why not).
- Before the step that reaches people (SurveyMonkey's send, writing the segment file) the invitations are recorded
  ``sending`` and committed; after it, ``handed_over``. An invitation ``sending`` is never retried by a run, so a
  crash between the two cannot invite anybody twice (it waits for a person; ``HandoverResult.unconfirmed``).
  A failure before that step is recorded ``failed`` with its reason and retried on the next run.
- ``ops.record_survey_handover`` refuses to change a final outcome, so a re-run or a backfill records nobody
  handed over twice, whatever the caller does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

__all__ = ["HandoverConfigError", "HandoverResult", "Invitee", "Outcome", "hand_over", "inviter_for"]

from cdp.sources.base import SourceSettings
from cdp.sources.invite import HandoverConfigError, Invitee, Outcome, Recorder
from cdp.warehouse import Actor, transaction

log = logging.getLogger(__name__)

TOOLS = ("surveymonkey", "typeform", "zigpoll")


class Inviter(Protocol):
    """A tool's way of inviting a list. ``invite`` prepares the batch, calls ``record(outcomes, "sending",
    batch)`` for those about to be reached, reaches them, and returns the batch and the final outcomes (``ok``
    ones are recorded ``handed_over``, the rest ``failed`` with their reason and retried next run; an inviter
    returns ``failed`` for a ``sending`` one only when the tool said for certain it was not sent). An exception
    fails every invitation not yet ``sending`` with its message (retried next run); ``sending`` ones stay."""

    tool: str

    def invite(
        self, invitees: list[Invitee], survey_key: str, record: Recorder
    ) -> tuple[str, list[Outcome]]: ...


@dataclass
class HandoverResult:
    survey_key: str
    tool: str
    due: int = 0
    handed_over: int = 0
    failed: int = 0
    not_eligible: int = 0
    unconfirmed: int = 0
    batch_ref: str | None = None
    reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The XCom form: counts and reasons, no person ids."""
        return {
            "survey_key": self.survey_key, "tool": self.tool, "due": self.due, "handed_over": self.handed_over,
            "failed": self.failed, "not_eligible": self.not_eligible, "unconfirmed": self.unconfirmed,
            "batch_ref": self.batch_ref, "reasons": dict(self.reasons),
        }  # fmt: skip


def inviter_for(tool: str, settings: SourceSettings, *, segment_dir: Path | None = None) -> Inviter:
    """The configured tool's inviter; a missing setting is a ``HandoverConfigError`` naming it."""
    if tool == "surveymonkey":
        from cdp.sources.surveymonkey.invite import SurveyMonkeyInviter

        return SurveyMonkeyInviter(settings)
    if tool == "typeform":
        from cdp.sources.typeform.invite import TypeformLinks

        return SegmentInviter(TypeformLinks(settings), segment_dir=segment_dir)
    if tool == "zigpoll":
        from cdp.sources.zigpoll.invite import ZigpollLinks

        return SegmentInviter(ZigpollLinks(settings), segment_dir=segment_dir)
    raise HandoverConfigError(f"survey tool {tool!r} is not one of {', '.join(TOOLS)} (DAG param 'tool')")


class LinkBuilder(Protocol):
    tool: str

    def link(self, invitation_id: str) -> str: ...


class SegmentInviter:
    """Typeform and Zigpoll cannot send invitations themselves: each invitation gets a prefilled link carrying its
    id, and the batch is written as a segment file (CSV, mode 0600) for the CRM or e-mail tool to send. Only the
    people ``ops.survey_handover_due`` returned (in the outreach list for surveys now) are in it."""

    COLUMNS = ("invitation_id", "email", "given_name", "family_name", "sample_week", "survey_link")

    def __init__(self, links: LinkBuilder, *, segment_dir: Path | None = None) -> None:
        from cdp.paths import state_dir

        self.links = links
        self.tool = links.tool
        self.segment_dir = Path(segment_dir) if segment_dir else state_dir() / "survey-segments"

    def invite(self, invitees: list[Invitee], survey_key: str, record: Recorder) -> tuple[str, list[Outcome]]:
        import csv
        import io
        import os
        from datetime import UTC, datetime

        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.segment_dir / f"{survey_key}-{self.tool}-{stamp}.csv"
        outcomes = [Outcome(i.invitation_id, True, self.links.link(i.invitation_id)) for i in invitees]
        record(outcomes, "sending", str(path))
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.COLUMNS)
        for invitee, outcome in zip(invitees, outcomes, strict=True):
            writer.writerow((invitee.invitation_id, invitee.email, invitee.given_name or "",
                             invitee.family_name or "", invitee.sample_week.isoformat(), outcome.tool_ref))  # fmt: skip
        self.segment_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(buffer.getvalue())
            handle.flush()
            os.fsync(handle.fileno())
        return str(path), outcomes


def _due(url: str, actor: Actor, survey_key: str, tool: str, run_id: str | None, limit: int) -> list[Invitee]:
    with transaction(url, actor) as conn:
        rows = conn.execute(
            "SELECT invitation_id::text, sample_week, email, given_name, family_name"
            " FROM ops.survey_handover_due(%s::text, %s::text, NULL::date, %s::integer, %s::text)",
            (survey_key, tool, limit, run_id),
        ).fetchall()
    return [
        Invitee(r["invitation_id"], r["sample_week"], r["email"], r["given_name"], r["family_name"])
        for r in rows
    ]


def _recorder(url: str, actor: Actor, tool: str, run_id: str | None, result: HandoverResult) -> Recorder:
    def record(outcomes: Iterable[Outcome], state: str, batch_ref: str | None) -> None:
        with transaction(url, actor) as conn:
            for outcome in outcomes:
                now = conn.execute(
                    "SELECT ops.record_survey_handover(%s::uuid, %s, %s, %s, %s, %s, %s) AS outcome",
                    (outcome.invitation_id, tool, state, outcome.reason if state == "failed" else None,
                     outcome.tool_ref, batch_ref, run_id),
                ).fetchone()["outcome"]  # fmt: skip
                if now != state:
                    log.warning(
                        "invitation %s is %s already: not recorded %s", outcome.invitation_id, now, state
                    )
                    continue
                if state == "handed_over":
                    result.handed_over += 1
                elif state == "failed":
                    result.failed += 1
                    reason = (outcome.reason or "").split(":")[0][:80]
                    result.reasons[reason] = result.reasons.get(reason, 0) + 1

    return record


def hand_over(
    url: str,
    *,
    actor: Actor,
    tool: str,
    settings: SourceSettings | None,
    survey_key: str,
    run_id: str | None = None,
    segment_dir: Path | None = None,
    limit: int = 10000,
    inviter: Inviter | None = None,
) -> HandoverResult:
    """Hand every due invitation of ``survey_key`` for ``tool`` over; record each outcome (see the module doc)."""
    if tool not in TOOLS:
        raise HandoverConfigError(f"survey tool {tool!r} is not one of {', '.join(TOOLS)} (DAG param 'tool')")
    if inviter is None:
        if settings is None:
            raise HandoverConfigError(f"no connection {tool!r}: the hand-over needs the {tool} connection")
        inviter = inviter_for(tool, settings, segment_dir=segment_dir)  # checks the settings before anything
    result = HandoverResult(survey_key, tool)
    with transaction(url, actor) as conn:
        before = conn.execute(
            "SELECT count(*) FILTER (WHERE h.outcome = 'not_eligible') AS gone,"
            "       count(*) FILTER (WHERE h.outcome = 'sending') AS sending"
            " FROM ops.survey_handover h JOIN ops.survey_invitation i USING (invitation_id)"
            " WHERE i.survey_key = %s AND i.tool = %s",
            (survey_key, tool),
        ).fetchone()
    invitees = _due(url, actor, survey_key, tool, run_id, limit)
    with transaction(url, actor) as conn:
        after = conn.execute(
            "SELECT count(*) FILTER (WHERE h.outcome = 'not_eligible') AS gone"
            " FROM ops.survey_handover h JOIN ops.survey_invitation i USING (invitation_id)"
            " WHERE i.survey_key = %s AND i.tool = %s",
            (survey_key, tool),
        ).fetchone()
    result.not_eligible = after["gone"] - before["gone"]
    result.unconfirmed = before["sending"]
    result.due = len(invitees)
    if not invitees:
        log.info(
            "survey %s (%s): nothing to hand over; %d no longer eligible",
            survey_key,
            tool,
            result.not_eligible,
        )
        return result
    record = _recorder(url, actor, tool, run_id, result)
    sending: set[str] = set()

    def tracking(outcomes: Iterable[Outcome], state: str, batch_ref: str | None) -> None:
        outcomes = list(outcomes)
        record(outcomes, state, batch_ref)
        if state == "sending":
            sending.update(o.invitation_id for o in outcomes)

    try:
        batch_ref, outcomes = inviter.invite(invitees, survey_key, tracking)
    except Exception as error:  # noqa: BLE001 - every failure is recorded with its reason, then re-raised below
        reason = f"{type(error).__name__}: {error}"[:500]
        pending = [
            Outcome(i.invitation_id, False, reason=reason) for i in invitees if i.invitation_id not in sending
        ]
        record(pending, "failed", None)
        if sending:
            # Reached people, or may have: stays 'sending' (never retried on its own), the reason logged.
            result.unconfirmed += len(sending)
            log.error("survey %s (%s): %d invitations may have been sent, not confirmed: %s",
                      survey_key, tool, len(sending), reason)  # fmt: skip
        log.warning("survey %s (%s): hand-over failed, kept for the next run: %s", survey_key, tool, reason)
        raise
    result.batch_ref = batch_ref
    record([o for o in outcomes if o.ok], "handed_over", batch_ref)
    record([o for o in outcomes if not o.ok], "failed", batch_ref)
    log.info(
        "survey %s (%s): %d handed over, %d failed (kept, retried next run), %d no longer eligible; batch %s",
        survey_key, tool, result.handed_over, result.failed, result.not_eligible, batch_ref,
    )  # fmt: skip
    return result
