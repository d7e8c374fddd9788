"""Referral tracking outage: no referral tracked for N hours while learners keep signing up for courses.

A silent referral platform (a broken widget, an expired token, a campaign switched off) shows up as sign-ups
without referrals. The check counts both in the window of the last ``hours`` hours and, when referrals are
zero while sign-ups reach ``min_signups``, raises one finding under the key ``referral_outage:referralhero``,
whose fingerprint is the time of the last referral tracked: the alert is sent once per outage (not once per
run while it lasts) and reported once as cleared when referrals are tracked again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cdp.paths import SQL_DIR
from cdp.quality.data_alerts import AlertOutcome, Finding, alert_once
from cdp.warehouse import Actor, transaction

OUTAGE_SQL = SQL_DIR / "referrals" / "outage_window.sql"
ALERT_SCOPE = "referral_outage:"
ALERT_KEY = "referral_outage:referralhero"


@dataclass(frozen=True)
class OutageCheck:
    since: datetime
    until: datetime
    referrals: int
    signups: int
    last_referral: datetime | None

    def finding(self, min_signups: int) -> Finding | None:
        if self.referrals > 0 or self.signups < min_signups:
            return None
        last = f"{self.last_referral:%Y-%m-%d %H:%M} UTC" if self.last_referral else "never"
        hours = (self.until - self.since).total_seconds() / 3600
        return Finding(
            ALERT_KEY,
            self.last_referral.isoformat() if self.last_referral else "never",
            f"*referralhero*: no referral tracked in the last {hours:g} h ({self.since:%Y-%m-%d %H:%M}–"
            f"{self.until:%Y-%m-%d %H:%M} UTC) while {self.signups} course sign-ups came in; last referral "
            f"tracked {last}.\n  repair: check the ReferralHero widget and campaign status, and the "
            f"`cdp_sync` runs of referralhero.subscribers; rewards meanwhile wait in ops.reward_fulfilment_queue",
        )


def check_window(url: str, *, until: datetime, hours: float, actor: Actor) -> OutageCheck:
    since = until - timedelta(hours=hours)
    with transaction(url, actor) as conn:
        row = conn.execute(OUTAGE_SQL.read_text(), {"since": since, "until": until}).fetchone()
    return OutageCheck(since, until, int(row["referrals"]), int(row["signups"]), row["last_referral"])


def alert_on_outage(
    url: str,
    *,
    until: datetime,
    hours: float,
    min_signups: int,
    run_id: str,
    send: Any,
    actor: Actor,
) -> tuple[OutageCheck, AlertOutcome]:
    check = check_window(url, until=until, hours=hours, actor=actor)
    finding = check.finding(min_signups)
    outcome = alert_once(url, scope=ALERT_SCOPE, title="Referral tracking outage", run_id=run_id,
                         findings=[finding] if finding else [], send=send, actor=actor)  # fmt: skip
    return check, outcome
