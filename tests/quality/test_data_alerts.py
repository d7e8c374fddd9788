"""Grouped data alerts: thresholds from the database, one message per run, repeated only on change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from cdp.quality.data_alerts import alert_once, quarantine_findings
from cdp.runtime import data_alert_sender
from cdp.warehouse import Actor
from cdp_sandbox.server import SandboxServer

ACTOR = Actor("pytest")


def _reject(url: str, stream: str, how_many: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ops.quarantine (source, stream, source_record_id, run_id, reason, payload)"
            " SELECT 'stripe', %s, 'ch_' || g, 'sync-1', 'unknown currency in currency', '{}'"
            " FROM generate_series(1, %s) g",
            (stream, how_many),
        )


def _check(url: str, run: str, since: datetime):
    return alert_once(
        url, scope="quarantine:", title="Quarantine", run_id=run, findings=quarantine_findings(url, since, ACTOR),
        send=data_alert_sender(), actor=ACTOR,
    )  # fmt: skip


def test_quarantine_alert_has_a_threshold_and_repeats_only_on_change(
    warehouse_url: str, sandbox: SandboxServer
) -> None:
    since = datetime.now(UTC) - timedelta(minutes=5)
    _reject(warehouse_url, "refunds", 9)  # below the default threshold of 10
    _reject(warehouse_url, "charges", 12)

    first = _check(warehouse_url, "day-1", since)

    assert first.new_or_changed == ("quarantine:stripe.charges",)
    assert [m["payload"]["text"] for m in sandbox.slack_messages] == [
        ":warning: *Quarantine* — run `day-1`\n"
        f"• *stripe.charges*: 12 records rejected since {since:%Y-%m-%d %H:%M} UTC, 12 waiting in ops.quarantine "
        "(top reason: unknown currency in currency).\n  repair: fix them at the source (the next sync re-reads "
        "them), or resolve them in ops.quarantine with a resolution note"
    ]

    assert not _check(warehouse_url, "day-1-retry", since).sent  # nothing changed: no second message
    _reject(warehouse_url, "charges", 1)
    assert _check(warehouse_url, "day-2", since).new_or_changed == ("quarantine:stripe.charges",)
    assert "13 waiting" in sandbox.slack_messages[-1]["payload"]["text"]

    with psycopg.connect(warehouse_url, autocommit=True) as conn:  # finance of alerts: raise the bar, no code
        conn.execute("UPDATE ops.alert_threshold SET min_count = 20 WHERE alert_kind = 'quarantine'")
    cleared = _check(warehouse_url, "day-3", since)
    assert cleared.cleared == ("quarantine:stripe.charges",)
    assert len(sandbox.slack_messages) == 3
    with psycopg.connect(warehouse_url) as conn:
        state = conn.execute("SELECT alert_key, active, times_seen FROM ops.alert_state").fetchall()
    assert state == [("quarantine:stripe.charges", False, 3)]


def test_the_quarantine_alert_names_the_reason_never_the_refused_value(warehouse_url: str) -> None:
    """A validator's reason quotes what it refused (a birth date, an email): the alert says only its kind."""
    since = datetime.now(UTC) - timedelta(minutes=5)
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ops.quarantine (source, stream, source_record_id, run_id, reason, payload)"
            " SELECT 'moodle', 'users', 'u' || g, 'sync-1', reason, '{}'"
            " FROM generate_series(1, 11) g, (VALUES"
            "   ('impossible date in date_of_birth: ''2031-02-30'''),"
            "   ('malformed email in email: ''ada.lovelace@example'''),"
            "   ('unknown value ''Ada Lovelace'' in parentalconsent')) AS r(reason)"
        )

    findings = quarantine_findings(warehouse_url, since, ACTOR)

    assert [finding.key for finding in findings] == ["quarantine:moodle.users"]
    text = findings[0].text
    assert "top reason: " in text
    for value in ("2031-02-30", "ada.lovelace", "Lovelace"):
        assert value not in text, f"the alert quotes a refused value: {text}"
    with psycopg.connect(warehouse_url) as conn:
        classes = [
            row[0]
            for row in conn.execute(
                "SELECT ops.reason_class(r) FROM unnest(%s::text[]) r",
                (["impossible date in date_of_birth: '2031-02-30'", "unknown value 'Ada' in parentalconsent",
                  "impossible dates: timeend before timestart", "rewards: impossible date in date: 99"],),
            )
        ]  # fmt: skip
    assert classes == [
        "impossible date in date_of_birth",
        "unknown value in parentalconsent",
        "impossible dates: timeend before timestart",
        "rewards: impossible date in date",
    ]
