"""A newcomer's first day against a sandbox dated from today: the first sync lands the past 90 days, and
yesterday's count diff shows the planted night of dropped enrolments (and no loss on the other days)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from cdp.quality.count_diff import run_count_diff
from cdp.sources import registry
from cdp.sync.engine import sync_stream
from cdp.sync.specs import spec_for
from cdp.warehouse import Actor
from cdp_sandbox import faults
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer

ACTOR = Actor("pytest-present")
TODAY = date(2026, 12, 7)
MIDNIGHT = datetime(2026, 12, 7, tzinfo=UTC)
STREAMS = ("moodle.users", "moodle.courses", "moodle.enrollments")


def test_yesterdays_count_diff_shows_the_planted_night(warehouse_url: str, tmp_path) -> None:
    world = World(seed=7, learners=600, today=TODAY)
    with SandboxServer(world, ledger_folder=tmp_path / "ledger") as sandbox:
        planted = faults.planted(world)
        for fault in planted:
            sandbox.faults.add(fault)
        for key in STREAMS:  # the first sync: everything up to now
            spec = spec_for(*key.split("."))
            stream = registry.stream(spec.source, spec.stream, sandbox.settings(spec.source))
            sync_stream(warehouse_url, stream, spec, actor=ACTOR, run_id="first", interval_end=MIDNIGHT)
        specs = [spec_for(*key.split(".")) for key in STREAMS]
        diffs = {}
        for name, start in (
            ("yesterday", MIDNIGHT - timedelta(days=1)),
            ("day before", MIDNIGHT - timedelta(days=2)),
        ):
            run = run_count_diff(
                warehouse_url, sandbox.settings, run_id=name, window_start=start,
                window_end=start + timedelta(days=1), actor=ACTOR, specs=specs,
            )  # fmt: skip
            assert run.failures == {}
            diffs[name] = {d.key: d for d in run.diffs}
    night = diffs["yesterday"]["moodle.enrollments"]
    dropped = planted[0].count
    assert night.source_count == world.truth.expected_count(
        "moodle", "enrollments", planted[0].since, planted[0].until
    )
    assert night.source_count > dropped > 0
    assert (night.raw_count, night.never_fetched, night.status) == (
        night.source_count - dropped,
        dropped,
        "alert",
    )
    assert diffs["yesterday"]["moodle.users"].source_count > 0
    for key, diff in diffs["day before"].items():  # real numbers, and nothing missing
        assert diff.never_fetched == 0, key
    assert diffs["day before"]["moodle.enrollments"].source_count > 0
