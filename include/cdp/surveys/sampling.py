"""The weekly survey sample of course completers (issue 18, part 1).

The draw itself is one SECURITY DEFINER function in the warehouse, ``ops.draw_survey_sample``
(``sql/definitions/ops/draw_survey_sample.sql``): it reads the week's completions and ``mart.outreach_eligible``
(purpose ``surveys``), leaves out anyone invited within the quiet period by any survey or tool, stratifies by
course (largest remainder), orders each course by a hash of the week's seed, and records the sample and one
audit event, all in one statement. So the rules hold whoever calls it, and the caller needs no contact details.
A week is drawn once per survey: a re-run returns the first draw and invites nobody new.

This module picks the weeks (ISO weeks, Monday, UTC), draws them in order, and reads the sample back."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cdp.warehouse import Actor, transaction

log = logging.getLogger(__name__)

DEFAULT_SURVEY_KEY = "completer-satisfaction"
DEFAULT_TOOL = "typeform"
DEFAULT_FRACTION = 0.10
DEFAULT_QUIET_DAYS = 90
TOOLS = ("surveymonkey", "typeform", "zigpoll")


class SamplingError(ValueError):
    """A sampling parameter the draw cannot use (a week that is not a Monday, a fraction outside (0, 1])."""


@dataclass(frozen=True)
class WeekSample:
    """One week's draw for one survey: its counts, and the invitations (ids, people, courses)."""

    survey_key: str
    sample_week: date
    tool: str
    created: bool
    completers: int
    frame: int
    sampled: int
    draw_seed: str
    strata: dict[str, dict[str, int]]
    invitations: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The XCom form: counts only, no person ids."""
        return {
            "survey_key": self.survey_key, "sample_week": self.sample_week.isoformat(), "tool": self.tool,
            "created": self.created, "completers": self.completers, "frame": self.frame, "sampled": self.sampled,
            "draw_seed": self.draw_seed,
        }  # fmt: skip


def week_start(moment: date | datetime) -> date:
    """The Monday that starts the ISO week of ``moment`` (UTC for an aware datetime)."""
    if isinstance(moment, datetime):
        moment = (moment.astimezone(UTC) if moment.tzinfo else moment).date()
    return moment - timedelta(days=moment.weekday())


def previous_week(moment: date | datetime | None) -> date:
    """The ISO week before the one ``moment`` (a run's logical date; now without one) falls in."""
    return week_start(moment or datetime.now(UTC)) - timedelta(days=7)


def parse_week(value: str | date) -> date:
    """A week given as a date (``2026-11-30``, any day of it is accepted only if it is the Monday) or ISO week
    (``2026-W49``)."""
    if isinstance(value, date):
        day = value
    else:
        text = value.strip()
        try:
            day = (datetime.strptime(text + "-1", "%G-W%V-%u").date() if "W" in text.upper()
                   else date.fromisoformat(text))  # fmt: skip
        except ValueError as error:
            raise SamplingError(f"week {value!r} is neither YYYY-MM-DD nor YYYY-Www") from error
    if day.weekday() != 0:
        raise SamplingError(f"week {day} is not a Monday: a sample week starts on the Monday of its ISO week")
    return day


def weeks_between(first: date, last: date) -> list[date]:
    """Every sample week from ``first`` to ``last`` (both Mondays), oldest first."""
    if last < first:
        raise SamplingError(f"backfill range ends ({last}) before it starts ({first})")
    return [first + timedelta(days=7 * n) for n in range((last - first).days // 7 + 1)]


def _check(fraction: float, quiet_days: int, tool: str) -> None:
    if not 0 < fraction <= 1:
        raise SamplingError(f"sample fraction {fraction} is not in (0, 1]")
    if quiet_days < 0:
        raise SamplingError(f"quiet period {quiet_days} days is negative")
    if tool not in TOOLS:
        raise SamplingError(f"survey tool {tool!r} is not one of {', '.join(TOOLS)}")


def draw_week(
    url: str,
    week: date,
    *,
    actor: Actor,
    survey_key: str = DEFAULT_SURVEY_KEY,
    tool: str = DEFAULT_TOOL,
    fraction: float = DEFAULT_FRACTION,
    quiet_days: int = DEFAULT_QUIET_DAYS,
    run_id: str | None = None,
) -> WeekSample:
    """Draw (or, drawn before, return) the sample of ``week`` for ``survey_key``; one transaction."""
    week = parse_week(week)
    _check(fraction, quiet_days, tool)
    with transaction(url, actor) as conn:
        summary = conn.execute(
            "SELECT ops.draw_survey_sample(%s::text, %s::text, %s::date, %s::numeric, %s::integer, %s::text)"
            " AS summary",
            (survey_key, tool, week, fraction, quiet_days, run_id),
        ).fetchone()["summary"]
        invitations = [
            {key: str(value) for key, value in row.items()}
            for row in conn.execute(
                "SELECT invitation_id, person_id, course_id FROM ops.survey_invitation"
                " WHERE survey_key = %s AND sample_week = %s ORDER BY course_id, invitation_id",
                (survey_key, week),
            )
        ]
    sample = WeekSample(
        survey_key=survey_key, sample_week=week, tool=summary["tool"], created=summary["created"],
        completers=summary["completers"], frame=summary["frame"], sampled=summary["sampled"],
        draw_seed=summary["draw_seed"], strata=summary["strata"], invitations=invitations,
    )  # fmt: skip
    log.info(
        "survey %s week %s (%s): %s; %d completers, %d eligible and outside the quiet period, %d sampled in %d courses",
        survey_key, week, sample.tool, "drawn" if sample.created else "drawn before, nothing new",
        sample.completers, sample.frame, sample.sampled, len(sample.strata),
    )  # fmt: skip
    return sample


def draw_weeks(url: str, weeks: Iterable[date], **options: Any) -> list[WeekSample]:
    """Draw several weeks oldest first (a backfill): each week's quiet period then sees the weeks before it."""
    return [draw_week(url, week, **options) for week in sorted({parse_week(week) for week in weeks})]
