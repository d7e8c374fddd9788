"""The parallel run: legacy tracking (the spreadsheet) and the platform (ReferralHero) side by side.

Each sheet row that is not a repeat of an earlier one is matched to a platform subscriber, for the friend
and for the referrer alike: by exact name and email first, then, where that finds no one, by exact name and
an email at most two edits away (a typo) when exactly one subscriber fits. Then, per referral:

- ``attributed_differently``: both sides have the friend, but credit different referrers;
- ``missing_on_platform``: the sheet has the referral, the platform does not know the friend;
- ``missing_in_legacy``: the platform has a referred sign-up that no sheet row names.

The result is kept in ``ops.referral_discrepancy`` (one row per referral, resolved when a later run no longer
finds it) and written as a CSV report (ids only, no names or emails). Re-running on the same data changes
nothing.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from rapidfuzz.distance import Levenshtein

from cdp.paths import SQL_DIR, state_dir
from cdp.text_rules import normalise_email
from cdp.warehouse import Actor, transaction

log = logging.getLogger(__name__)

PLATFORM_SQL = SQL_DIR / "referrals" / "platform_referrals.sql"
DISCREPANCY_UPSERT_SQL = SQL_DIR / "referrals" / "discrepancy_upsert.sql"
REPORT_COLUMNS = ("referral_key", "kind", "legacy_ref", "platform_subscriber_id", "legacy_referrer_id",
                  "platform_referrer_id", "referred_on", "in_pilot")  # fmt: skip
MAX_TYPO_EDITS = 2


@dataclass(frozen=True)
class Discrepancy:
    referral_key: str
    kind: str
    legacy_ref: str | None
    platform_subscriber_id: str | None
    legacy_referrer_id: str | None
    platform_referrer_id: str | None
    referred_on: date | None
    in_pilot: bool


@dataclass(frozen=True)
class ParallelRunResult:
    legacy_rows: int
    platform_referrals: int
    matched: int
    matched_by_typo: int
    counts: dict[str, int]
    new: int
    resolved: int
    report: Path | None


def _name(value: str | None) -> str:
    return " ".join((value or "").lower().split())


def _email(value: str | None) -> str:
    return normalise_email(value or "")


class Directory:
    """Platform subscribers findable by the name and email a person typed into the sheet."""

    def __init__(self, subscribers: list[dict[str, Any]]) -> None:
        self.by_pair: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.by_name: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for s in subscribers:
            self.by_pair[_name(s["name"]), _email(s["email"])].append(s["subscriber_id"])
            self.by_name[_name(s["name"])].append((_email(s["email"]), s["subscriber_id"]))

    def find(self, name: str, email: str) -> tuple[str | None, str]:
        """(subscriber id, how) — how is 'exact', 'email_typo', 'ambiguous' or 'none'."""
        exact = self.by_pair.get((_name(name), _email(email)), [])
        if len(exact) == 1:
            return exact[0], "exact"
        if exact:
            return None, "ambiguous"
        near = [sid for known, sid in self.by_name.get(_name(name), [])
                if Levenshtein.distance(known, _email(email), score_cutoff=MAX_TYPO_EDITS)
                <= MAX_TYPO_EDITS]  # fmt: skip
        if len(near) == 1:
            return near[0], "email_typo"
        return None, "ambiguous" if near else "none"


def compare(
    legacy: list[dict[str, Any]], platform: list[dict[str, Any]]
) -> tuple[list[Discrepancy], dict[str, int]]:
    """The discrepancies between the sheet's rows and the platform's subscribers, and match statistics."""
    directory = Directory(platform)
    by_id = {s["subscriber_id"]: s for s in platform}
    found: list[Discrepancy] = []
    seen: set[str] = set()
    stats: Counter[str] = Counter()
    for row in sorted(legacy, key=lambda r: r["legacy_ref"]):
        if row["duplicate_of"]:
            stats["duplicate_rows"] += 1
            continue
        friend, how = directory.find(row["referred_name"], row["referred_email"])
        if friend is None:
            referrer, _ = directory.find(row["referrer_name"], row["referrer_email"])
            found.append(Discrepancy(f"legacy:{row['legacy_ref']}", "missing_on_platform", row["legacy_ref"], None,
                                     referrer, None, row["referred_on"], False))  # fmt: skip
            continue
        stats["matched"] += 1
        stats["matched_by_typo"] += how == "email_typo"
        seen.add(friend)
        referrer, _ = directory.find(row["referrer_name"], row["referrer_email"])
        platform_referrer = by_id[friend]["referrer_source_id"]
        if referrer != platform_referrer:
            found.append(Discrepancy(friend, "attributed_differently", row["legacy_ref"], friend, referrer,
                                     platform_referrer, row["referred_on"], by_id[friend]["in_pilot"]))  # fmt: skip
    for s in platform:
        if s["referrer_source_id"] and s["subscriber_id"] not in seen:
            signed_up = s["signed_up_at"].date() if s["signed_up_at"] else None
            found.append(Discrepancy(s["subscriber_id"], "missing_in_legacy", None, s["subscriber_id"], None,
                                     s["referrer_source_id"], signed_up, s["in_pilot"]))  # fmt: skip
    return found, dict(stats)


def _report_path(run_id: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
    folder = state_dir() / "reports" / "referral_parallel_run"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{safe}.csv"


def run_parallel(
    url: str, *, actor: Actor, run_id: str, report_path: Path | None = None
) -> ParallelRunResult:
    with transaction(url, actor) as conn:
        legacy = conn.execute(
            "SELECT legacy_ref, referrer_name, referrer_email, referred_name, referred_email, referred_on,"
            " duplicate_of FROM ops.referral_legacy"
        ).fetchall()
        platform = conn.execute(PLATFORM_SQL.read_text()).fetchall()
        found, stats = compare(legacy, platform)
        new = 0
        upsert = DISCREPANCY_UPSERT_SQL.read_text()
        for d in found:
            new += conn.execute(upsert, {**d.__dict__, "run": run_id}).rowcount
        resolved = conn.execute(
            "UPDATE ops.referral_discrepancy SET resolved_at = now(), resolved_run_id = %s"
            " WHERE resolved_at IS NULL AND NOT (referral_key = ANY (%s))",
            (run_id, [d.referral_key for d in found]),
        ).rowcount
    counts = dict(Counter(d.kind for d in found))
    path = report_path or _report_path(run_id)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(REPORT_COLUMNS)
        for d in sorted(found, key=lambda d: (d.kind, d.referral_key)):
            writer.writerow(
                [getattr(d, column) if getattr(d, column) is not None else "" for column in REPORT_COLUMNS]
            )
    result = ParallelRunResult(len(legacy), sum(1 for s in platform if s["referrer_source_id"]),
                               stats.get("matched", 0), stats.get("matched_by_typo", 0), counts, new, resolved,
                               path)  # fmt: skip
    log.info("parallel run: %d sheet rows, %d platform referrals, %d matched (%d through an email typo);"
             " discrepancies %s (%d new or changed, %d resolved)", result.legacy_rows, result.platform_referrals,
             result.matched, result.matched_by_typo, counts, new, resolved)  # fmt: skip
    return result
