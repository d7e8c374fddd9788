"""Data alerts of the weekly survey sample (issue 18, part 4): a week whose sample is empty although people
completed courses, and a tool whose response rate fell below the threshold."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any

from cdp.quality.data_alerts import AlertOutcome, Finding, alert_once
from cdp.warehouse import Actor, connect

DEFAULT_MIN_RESPONSE_RATE = 0.15
#: Invitations have this many weeks to be answered before their week's rate is judged.
DEFAULT_RESPONSE_WEEKS = 2
#: Fewer invitations than this in a week and tool say nothing about a rate.
DEFAULT_MIN_INVITED = 20


def empty_sample_findings(samples: Sequence[dict[str, Any]]) -> list[Finding]:
    """A drawn week (``WeekSample.as_dict``) with completions but nobody sampled."""
    findings = []
    for sample in samples:
        if sample["completers"] > 0 and sample["sampled"] == 0:
            key = f"{sample['survey_key']}/{sample['sample_week']}"
            findings.append(Finding(
                f"survey_sample_empty:{key}", f"{sample['completers']}:{sample['frame']}",
                f"*{key}*: {sample['completers']} people completed a course but nobody was sampled "
                f"({sample['frame']} of them may be asked: surveys consent and outside the quiet period)",
            ))  # fmt: skip
    return findings


def response_rate_findings(
    url: str,
    week: date,
    *,
    actor: Actor,
    min_rate: float = DEFAULT_MIN_RESPONSE_RATE,
    min_invited: int = DEFAULT_MIN_INVITED,
) -> list[Finding]:
    """Tools whose invitations of sample week ``week`` were answered at a rate below ``min_rate``. A tool that
    has never brought back a linked answer is not checked: its hand-over is not live yet."""
    with connect(url, actor) as conn:
        rows = conn.execute(
            "SELECT w.tool, w.invited, w.responded, w.response_rate FROM mart.survey_response_rate_weekly w"
            " WHERE w.sample_week = %s AND w.invited >= %s AND w.response_rate < %s"
            "   AND EXISTS (SELECT 1 FROM mart.survey_response_rate_weekly live"
            "               WHERE live.tool = w.tool AND live.responded > 0)"
            " ORDER BY w.tool",
            (week, min_invited, min_rate),
        ).fetchall()
    return [
        Finding(
            f"survey_response_rate:{week}/{row['tool']}", f"{row['invited']}:{row['responded']}",
            f"*{row['tool']}* week {week}: {row['responded']} of {row['invited']} invitations answered "
            f"({float(row['response_rate']):.1%}, threshold {min_rate:.0%})",
        )
        for row in rows
    ]  # fmt: skip


def survey_alert(
    url: str,
    samples: Sequence[dict[str, Any]],
    *,
    run_id: str,
    send: Callable[[str], None],
    actor: Actor,
    min_rate: float = DEFAULT_MIN_RESPONSE_RATE,
    response_weeks: int = DEFAULT_RESPONSE_WEEKS,
    min_invited: int = DEFAULT_MIN_INVITED,
) -> AlertOutcome:
    """One grouped alert for the run's weeks: empty samples, and the response rate of the week
    ``response_weeks`` before the newest week drawn."""
    findings = empty_sample_findings(samples)
    scopes = [f"survey_sample_empty:{s['survey_key']}/{s['sample_week']}" for s in samples]
    if samples:
        newest = max(date.fromisoformat(str(s["sample_week"])) for s in samples)
        judged = newest - timedelta(weeks=response_weeks)
        findings += response_rate_findings(
            url, judged, actor=actor, min_rate=min_rate, min_invited=min_invited
        )
        scopes.append(f"survey_response_rate:{judged}")
    if not scopes:
        return AlertOutcome(False, None, (), (), ())
    return alert_once(
        url,
        scope=",".join(scopes),
        title="Survey sample",
        run_id=run_id,
        findings=findings,
        send=send,
        actor=actor,
    )
