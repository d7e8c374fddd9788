"""Data alerts people read: one grouped message per run, sent only when the situation changed.

A check turns what it found into ``Finding``s: a stable ``key`` (which situation: a stream's count diff,
a stream's quarantine, a month's reconciliation) and a ``fingerprint`` (what it looks like now). The last
fingerprint said for each key lives in ``ops.alert_state``; a run sends one message with the findings that
are new or changed and the ones that cleared, and sends nothing when all of them are as already reported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cdp.paths import SQL_DIR
from cdp.quality.count_diff import CountDiff
from cdp.warehouse import Actor, transaction

log = logging.getLogger(__name__)

OPEN_QUARANTINE_SQL = SQL_DIR / "quality" / "open_quarantine.sql"


@dataclass(frozen=True)
class Finding:
    key: str
    fingerprint: str
    text: str


@dataclass(frozen=True)
class AlertOutcome:
    sent: bool
    text: str | None
    new_or_changed: tuple[str, ...]
    unchanged: tuple[str, ...]
    cleared: tuple[str, ...]


def _window(diff: CountDiff) -> str:
    return f"{diff.window_start:%Y-%m-%d %H:%M}–{diff.window_end:%Y-%m-%d %H:%M} UTC"


def count_diff_findings(diffs: Iterable[CountDiff]) -> list[Finding]:
    """One finding per stream whose diff alerted, naming source, window, numbers, location and repair."""
    findings = []
    for diff in diffs:
        if diff.status != "alert":
            continue
        text = (
            f"*{diff.key}* ({diff.entity}), window {_window(diff)}: source reports {diff.source_count}, "
            f"raw has {diff.raw_count}, core has {diff.core_count} "
            f"({diff.variance:.1%} off, threshold {diff.threshold:.0%}); loss: {diff.loss_location} "
            f"(never fetched {diff.never_fetched}, rejected {diff.quarantined_count}, dropped {diff.dropped})."
            f"\n  repair: {diff.repair or 'see the runbook'}"
        )
        fingerprint = (
            f"{diff.window_start.isoformat()}|{diff.source_count}|{diff.raw_count}|{diff.core_count}|"
            f"{diff.quarantined_count}"
        )
        findings.append(Finding(f"count_diff:{diff.key}", fingerprint, text))
    return findings


def quarantine_findings(url: str, since: datetime, actor: Actor) -> list[Finding]:
    """Streams with at least the threshold of records rejected since ``since`` (counted in SQL)."""
    with transaction(url, actor) as conn:
        rows = conn.execute(OPEN_QUARANTINE_SQL.read_text(), {"since": since}).fetchall()
    return [
        Finding(
            f"quarantine:{row['source']}.{row['stream']}",
            f"{row['open_count']}",
            f"*{row['source']}.{row['stream']}*: {row['new_count']} records rejected since "
            f"{since:%Y-%m-%d %H:%M} UTC, {row['open_count']} waiting in ops.quarantine "
            f"(top reason: {row['top_reason']}).\n  repair: fix them at the source (the next sync re-reads "
            f"them), or resolve them in ops.quarantine with a resolution note",
        )
        for row in rows
    ]


DUPLICATE_SPIKE_KEY = "dedupe_spike:duplicate_rate"


def duplicate_spike_findings(url: str, run_id: str, actor: Actor) -> list[Finding]:
    """The finished dedupe run's duplicate-rate spike, if it flagged one (``ops.dedupe_run.rate_spike``).

    The fingerprint is the rate and its baseline in whole percent, so the next night's run at about the
    same rate is the same situation (not repeated); a run without a spike clears it.
    """
    with transaction(url, actor) as conn:
        run = conn.execute(
            "SELECT run_id, mode, people_compared, duplicate_rate, baseline_rate, rate_spike, merged, queued"
            " FROM ops.dedupe_run WHERE run_id = %s AND status = 'succeeded'",
            (run_id,),
        ).fetchone()
    if run is None:
        raise ValueError(f"dedupe run {run_id} has not finished")
    if not run["rate_spike"]:
        return []
    rate, baseline = float(run["duplicate_rate"]), float(run["baseline_rate"])
    text = (
        f"*duplicate rate spike*: dedupe {run['mode']} run `{run['run_id']}` found {rate:.1%} of "
        f"{run['people_compared']} people compared in a duplicate pair, against {baseline:.1%} in recent runs "
        f"({run['merged']} merged, {run['queued']} queued for review). An import probably created people twice."
        "\n  repair: check the latest syncs (a source that changed its ids, a broken mapping), look at "
        "ops.dedupe_run and the newest ops.identity_merge rows, undo wrong merges with "
        "`cdp dedupe unmerge MERGE_ID`"
    )
    return [Finding(DUPLICATE_SPIKE_KEY, f"{rate:.0%}|{baseline:.0%}", text)]


def alert_once(
    url: str,
    *,
    scope: str,
    title: str,
    run_id: str,
    findings: Sequence[Finding],
    send: Callable[[str], None],
    actor: Actor,
) -> AlertOutcome:
    """Send one message for the run if any finding is new, changed or cleared; record what was said.

    ``scope`` is the prefix of the keys this check owns (``count_diff:``, ``quarantine:``, …, several
    separated by commas), so a finding that no longer appears is reported once as cleared.
    """
    prefixes = [prefix.strip() for prefix in scope.split(",") if prefix.strip()]
    with transaction(url, actor) as conn:
        # One alerting run at a time per scope: a retried task and a rerun cannot both send.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"cdp.alerts:{scope}",))
        known = {
            row["alert_key"]: row["fingerprint"]
            for row in conn.execute(
                "SELECT alert_key, fingerprint FROM ops.alert_state WHERE active AND alert_key LIKE ANY (%s)",
                ([f"{prefix}%" for prefix in prefixes],),
            )
        }
        current = {finding.key: finding for finding in findings}
        changed = [f for f in findings if known.get(f.key) != f.fingerprint]
        unchanged = [f for f in findings if known.get(f.key) == f.fingerprint]
        cleared = sorted(set(known) - set(current))
        text = None
        if changed or cleared:
            lines = [f":warning: *{title}* — run `{run_id}`"]
            lines += [f"• {finding.text}" for finding in changed]
            lines += [f"• cleared: {key}" for key in cleared]
            if unchanged:
                lines.append(f"({len(unchanged)} more already reported and unchanged: "
                             f"{', '.join(f.key for f in unchanged)})")  # fmt: skip
            text = "\n".join(lines)
            send(text)
        for finding in findings:
            conn.execute(
                "INSERT INTO ops.alert_state (alert_key, fingerprint, summary, last_sent_at, last_run_id)"
                " VALUES (%(key)s, %(fingerprint)s, %(summary)s, CASE WHEN %(sent)s THEN now() END, %(run)s)"
                " ON CONFLICT (alert_key) DO UPDATE SET fingerprint = excluded.fingerprint, active = true,"
                " summary = excluded.summary, last_seen = now(), last_run_id = excluded.last_run_id,"
                " times_seen = ops.alert_state.times_seen + 1,"
                " last_sent_at = coalesce(excluded.last_sent_at, ops.alert_state.last_sent_at)",
                {"key": finding.key, "fingerprint": finding.fingerprint, "summary": finding.text[:2000],
                 "sent": finding in changed, "run": run_id},
            )  # fmt: skip
        if cleared:
            conn.execute(
                "UPDATE ops.alert_state SET active = false, last_seen = now(), last_run_id = %s"
                " WHERE alert_key = ANY (%s)",
                (run_id, cleared),
            )
    log.info(
        "data alert %s: %d new or changed, %d unchanged, %d cleared, sent=%s",
        scope, len(changed), len(unchanged), len(cleared), text is not None,
    )  # fmt: skip
    return AlertOutcome(
        text is not None,
        text,
        tuple(f.key for f in changed),
        tuple(f.key for f in unchanged),
        tuple(cleared),
    )


def count_diff_alert(
    url: str,
    per_source: Sequence[Mapping[str, Any]],
    *,
    run_id: str,
    send: Callable[[str], None],
    actor: Actor,
) -> AlertOutcome:
    """One grouped data alert for a count-diff run, only if something changed.

    ``per_source`` holds each counting task's result (``diffs`` as ``CountDiff.as_dict`` gives them, the
    ``failures`` by stream key, the ``window_start``). Fails, after alerting, when a stream was not counted.
    """
    failures = {key: why for part in per_source for key, why in part["failures"].items()}
    diffs = [
        CountDiff.from_row({**diff, "window_start": datetime.fromisoformat(diff["window_start"]),
                            "window_end": datetime.fromisoformat(diff["window_end"])})
        for part in per_source
        for diff in part["diffs"]
    ]  # fmt: skip
    findings = count_diff_findings(diffs)
    findings += quarantine_findings(url, datetime.fromisoformat(per_source[0]["window_start"]), actor)
    findings += [
        Finding(f"count_diff:{key}", "could not count", f"*{key}*: could not be counted: {why[:300]}")
        for key, why in failures.items()
    ]
    outcome = alert_once(
        url, scope="count_diff:,quarantine:", title="Count diff", run_id=run_id, findings=findings, send=send,
        actor=actor,
    )  # fmt: skip
    if failures:
        raise RuntimeError(f"could not count {sorted(failures)}: see the data alert")
    return outcome
