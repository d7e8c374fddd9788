"""No referrals tracked for N hours while sign-ups continue: one grouped data alert, sent once per outage,
and reported once as cleared when referrals are tracked again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cdp.referrals.outage import ALERT_KEY, alert_on_outage, check_window
from cdp.warehouse import Actor

ACTOR = Actor("pytest")
END = datetime(2025, 1, 1, tzinfo=UTC)
SILENCE = timedelta(days=45)


def test_the_outage_alert_fires_once_and_clears(warehouse_url: str, referral_sync) -> None:
    for key in ("moodle.users", "moodle.courses", "moodle.enrollments"):
        referral_sync(key, END)
    referral_sync("referralhero.subscribers", END - SILENCE)  # the platform stopped sending referrals
    sent: list[str] = []
    hours = SILENCE.total_seconds() / 3600 - 24

    def check(at: datetime, run: str):
        return alert_on_outage(warehouse_url, until=at, hours=hours, min_signups=5, run_id=run, send=sent.append,
                               actor=ACTOR)  # fmt: skip

    quiet, first = check(END, "run-1")
    assert quiet.referrals == 0 and quiet.signups >= 5
    assert first.sent and first.new_or_changed == (ALERT_KEY,) and len(sent) == 1
    assert "no referral tracked" in sent[0] and "@" not in sent[0]

    _, second = check(END - timedelta(hours=12), "run-2")  # the next run, same outage
    assert not second.sent and second.unchanged == (ALERT_KEY,) and len(sent) == 1

    referral_sync("referralhero.subscribers", END, run="run-3")  # tracking resumes, the gap is filled
    resumed, third = check(END, "run-3")
    assert resumed.referrals > 0
    assert third.sent and third.cleared == (ALERT_KEY,) and len(sent) == 2 and "cleared" in sent[1]

    _, fourth = check(END, "run-4")
    assert not fourth.sent and len(sent) == 2


def test_no_alert_without_sign_ups_or_with_referrals(warehouse_url: str, referral_sync) -> None:
    """Breaking either half of the rule silences the alert: quiet sign-ups, or referrals still arriving."""
    referral_sync("moodle.users", END)
    referral_sync("referralhero.subscribers", END)
    sent: list[str] = []
    window = check_window(warehouse_url, until=END, hours=SILENCE.total_seconds() / 3600, actor=ACTOR)
    assert window.signups == 0 and window.finding(min_signups=1) is None  # no enrolments synced: no sign-ups
    _, outcome = alert_on_outage(warehouse_url, until=END, hours=SILENCE.total_seconds() / 3600, min_signups=0,
                                 run_id="r", send=sent.append, actor=ACTOR)  # fmt: skip
    assert window.referrals > 0 and not outcome.sent and sent == []
