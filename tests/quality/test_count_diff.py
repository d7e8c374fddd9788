"""The seed story: the LMS API drops 1,500 registrations in one night. The next count diff says so, with
the numbers, where the loss sits and how to repair it; the grouped alert is sent once and cleared once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from cdp.quality.count_diff import check_stream, run_count_diff
from cdp.quality.data_alerts import alert_once, count_diff_findings, quarantine_findings
from cdp.runtime import data_alert_sender
from cdp.sources import registry
from cdp.sync.engine import sync_stream
from cdp.sync.specs import SPECS, spec_for
from cdp.warehouse import Actor
from cdp_sandbox.faults import Fault
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer

ACTOR = Actor("pytest")
NIGHT = datetime(2025, 2, 1, tzinfo=UTC)
MORNING = NIGHT + timedelta(days=1)
REGISTERED = 2000  # users registered (or edited) in the night
DROPPED = 1500


def _sync(
    url: str, sandbox: SandboxServer, key: str, start: datetime | None, end: datetime, run: str
) -> None:
    spec = spec_for(*key.split("."))
    stream = registry.stream(spec.source, spec.stream, sandbox.settings(spec.source))
    sync_stream(url, stream, spec, actor=ACTOR, run_id=run, interval_start=start, interval_end=end)


def _night_with_lost_registrations(
    url: str, world: World, sandbox: SandboxServer, dropped: int = DROPPED
) -> Fault:
    _sync(url, sandbox, "moodle.users", None, NIGHT, "initial")
    malformed = {str(i) for i in world.truth.malformed("moodle", "users")}
    night_users = [r["id"] for r in world.records("moodle", "users") if str(r["id"]) not in malformed][
        :REGISTERED
    ]
    world.touch("moodle", "users", night_users, NIGHT + timedelta(hours=2))
    fault = sandbox.faults.add(
        Fault("drop_records", "moodle", "users", count=dropped, since=NIGHT, until=MORNING)
    )
    _sync(url, sandbox, "moodle.users", NIGHT, MORNING, "nightly")
    return fault


def _count(url: str, sandbox: SandboxServer, run: str):
    return run_count_diff(
        url, sandbox.settings, run_id=run, window_start=NIGHT, window_end=MORNING, actor=ACTOR
    )


def _alert(url: str, run: str, diffs, quarantined_since: datetime):
    return alert_once(
        url, scope="count_diff:,quarantine:", title="Count diff", run_id=run,
        findings=count_diff_findings(diffs) + quarantine_findings(url, quarantined_since, ACTOR),
        send=data_alert_sender(), actor=ACTOR,
    )  # fmt: skip


def test_dropped_registrations_are_found_located_and_alerted_once(
    warehouse_url: str, world: World, sandbox: SandboxServer
) -> None:
    fault = _night_with_lost_registrations(warehouse_url, world, sandbox)
    since = datetime.now(UTC)  # the initial load's rejections are old news; the night added none
    assert len(fault.affected_ids) == DROPPED  # the sandbox really hid them from the listing

    run = _count(warehouse_url, sandbox, "check-1")

    assert run.failures == {}
    users = next(d for d in run.diffs if d.key == "moodle.users")
    assert (users.source_count, users.raw_count, users.core_count) == (REGISTERED, REGISTERED - DROPPED, 500)
    assert (users.never_fetched, users.quarantined_count, users.dropped) == (DROPPED, 0, 0)
    assert (users.status, users.loss_location, users.variance) == ("alert", "never_fetched", 0.75)
    assert (
        "airflow backfill create --dag-id cdp_sync --from-date 2025-02-01T00:00:00 --to-date 2025-02-02T00:00:00"
        in (users.repair)
    )
    # Every other stream had nothing in the window: recorded, not alerted.
    assert {d.key: d.status for d in run.diffs if d.key != "moodle.users"} == {
        s.key: "empty" for s in SPECS if s.key != "moodle.users"
    }
    with psycopg.connect(warehouse_url) as conn:
        history = conn.execute(
            "SELECT run_id, source_count, raw_count, core_count, loss_location FROM ops.count_diff"
            " WHERE source = 'moodle' AND stream = 'users'"
        ).fetchall()
    assert history == [("check-1", 2000, 500, 500, "never_fetched")]

    outcome = _alert(warehouse_url, "check-1", run.diffs, since)

    assert outcome.sent and outcome.new_or_changed == ("count_diff:moodle.users",)
    assert [m["payload"] for m in sandbox.slack_messages] == [
        {
            "text": ":warning: *Count diff* — run `check-1`\n"
            "• *moodle.users* (core.person), window 2025-02-01 00:00–2025-02-02 00:00 UTC: source reports 2000, "
            "raw has 500, core has 500 (75.0% off, threshold 5%); loss: never_fetched (never fetched 1500, "
            "rejected 0, dropped 0).\n  repair: " + users.repair
        }
    ]

    # The same situation checked again (a rerun, a retried task) is not repeated.
    again = _count(warehouse_url, sandbox, "check-2")
    assert not _alert(warehouse_url, "check-2", again.diffs, since).sent
    assert len(sandbox.slack_messages) == 1

    # The repair the alert names works, and the clearing is said once.
    sandbox.faults.clear()
    _sync(warehouse_url, sandbox, "moodle.users", NIGHT, MORNING, "backfill")
    repaired = _count(warehouse_url, sandbox, "check-3")
    users = next(d for d in repaired.diffs if d.key == "moodle.users")
    assert (users.source_count, users.raw_count, users.core_count, users.status) == (2000, 2000, 2000, "ok")
    cleared = _alert(warehouse_url, "check-3", repaired.diffs, since)
    assert cleared.sent and cleared.cleared == ("count_diff:moodle.users",)
    assert sandbox.slack_messages[-1]["payload"]["text"].endswith("• cleared: count_diff:moodle.users")
    assert not _alert(warehouse_url, "check-4", _count(warehouse_url, sandbox, "check-4").diffs, since).sent
    assert len(sandbox.slack_messages) == 2


def test_rejected_and_dropped_records_are_told_apart(
    warehouse_url: str, world: World, sandbox: SandboxServer
) -> None:
    _sync(warehouse_url, sandbox, "moodle.users", None, NIGHT, "initial")
    malformed = sorted(world.truth.malformed("moodle", "users"), key=str)
    assert malformed, "the world has malformed users"
    good = [r["id"] for r in world.records("moodle", "users") if r["id"] not in set(malformed)][:40]
    world.touch("moodle", "users", [*malformed, *good], NIGHT + timedelta(hours=3))
    _sync(warehouse_url, sandbox, "moodle.users", NIGHT, MORNING, "nightly")
    # A mapping fault: some landed users never reach core (simulated by deleting their source-id rows).
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute(
            "DELETE FROM core.person_source_id WHERE source = 'moodle.user' AND source_record_id = ANY (%s)",
            ([str(i) for i in good[:4]],),
        )

    users = next(d for d in _count(warehouse_url, sandbox, "check").diffs if d.key == "moodle.users")

    total = len(malformed) + len(good)
    assert (users.source_count, users.raw_count, users.core_count) == (total, total, len(good) - 4)
    assert (users.quarantined_count, users.dropped, users.never_fetched) == (len(malformed), 4, 0)
    assert users.loss_location == "mixed"
    assert "rejected" in users.repair and "mapping fault" in users.repair


@pytest.mark.parametrize(("threshold", "status"), [(None, "alert"), (0.25, "ok")])
def test_threshold_is_set_per_stream_without_code(
    warehouse_url: str, world: World, sandbox: SandboxServer, threshold: float | None, status: str
) -> None:
    _night_with_lost_registrations(warehouse_url, world, sandbox, dropped=400)  # 20% of the night's 2,000
    if threshold is not None:
        with psycopg.connect(warehouse_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO ops.count_diff_threshold (entity, max_variance) VALUES ('moodle.users', %s)",
                (threshold,),
            )

    users = next(d for d in _count(warehouse_url, sandbox, "check").diffs if d.key == "moodle.users")

    assert (users.never_fetched, users.variance) == (400, 0.2)
    assert users.threshold == (threshold or 0.05)
    assert users.status == status


def test_a_zero_never_passes(warehouse_url: str, world: World, sandbox: SandboxServer) -> None:
    _sync(warehouse_url, sandbox, "moodle.users", None, NIGHT, "initial")
    world.touch("moodle", "users", [r["id"] for r in world.records("moodle", "users")][:3], NIGHT)
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute("UPDATE ops.count_diff_threshold SET max_variance = 0.99 WHERE entity = '*'")

    users = next(d for d in _count(warehouse_url, sandbox, "check").diffs if d.key == "moodle.users")

    assert (users.source_count, users.core_count, users.variance) == (3, 0, 1.0)
    assert users.status == "alert" and users.loss_location == "never_fetched"


def test_streams_that_land_on_other_rows_are_counted_where_they_land(
    warehouse_url: str, world: World, sandbox: SandboxServer
) -> None:
    # An Opportunity lands on its processor donation (crm_source_record_id), a Zigpoll participant as a person
    # key: counted by (source, source_record_id) in core.donation / core.consent, every one looked dropped
    # and the daily count diff alerted on both streams forever (found by the first-hour browser walk).
    end = datetime.now(UTC)
    for key in ("moodle.users", "salesforce.Account", "stripe.charges", "salesforce.Opportunity",
                "zigpoll.participants"):  # fmt: skip
        _sync(warehouse_url, sandbox, key, None, end, "initial")
    for key in ("salesforce.Opportunity", "zigpoll.participants"):
        spec = spec_for(*key.split("."))
        stream = registry.stream(spec.source, spec.stream, sandbox.settings(spec.source))
        diff = check_stream(
            warehouse_url, spec, stream, run_id=f"landed-{key}", window_start=datetime(2000, 1, 1, tzinfo=UTC),
            window_end=end, actor=ACTOR,
        )  # fmt: skip
        assert diff.core_count > 0, key
        assert diff.dropped == 0, (key, diff)
        assert diff.raw_count == diff.core_count + diff.quarantined_count + diff.deleted_count, (key, diff)
