"""Syncing streams from the sandbox: counts equal the generator's truth, re-runs change nothing, the
watermark boundary loses nothing, a killed run leaves nothing, and rejected records are kept."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from support import snapshot

from cdp.sources import registry
from cdp.sources.base import AuthError
from cdp.sync.engine import sync_stream
from cdp.sync.specs import SPECS, spec_for
from cdp.warehouse import Actor
from cdp_sandbox.faults import Fault
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer

ACTOR = Actor("pytest")
SNAPSHOT_TABLES = ("core.person", "core.person_source_id", "core.course", "core.enrollment",
                   "core.course_completion", "core.donation", "ops.quarantine", "ops.sync_watermark",
                   "raw.records")  # fmt: skip


@pytest.fixture
def world() -> World:
    return World(seed=11, learners=300)


@pytest.fixture
def sandbox(world: World, tmp_path) -> Iterator[SandboxServer]:
    with SandboxServer(world, ledger_folder=tmp_path / "ledger-drop") as server:
        yield server


def _sync(
    url: str,
    sandbox: SandboxServer,
    key: str,
    end: datetime,
    start: datetime | None = None,
    run: str = "run-1",
):
    spec = spec_for(*key.split("."))
    stream = registry.stream(spec.source, spec.stream, sandbox.settings(spec.source))
    return sync_stream(url, stream, spec, actor=ACTOR, run_id=run, interval_end=end, interval_start=start)


def _sync_all(url: str, sandbox: SandboxServer, end: datetime, run: str = "run-1") -> dict[str, object]:
    return {
        spec.key: _sync(url, sandbox, spec.key, end, run=run) for spec in sorted(SPECS, key=lambda s: s.wave)
    }


def _ids(world: World, source: str, stream: str, key: str) -> list[str]:
    return [str(record[key]) for record in world.records(source, stream)]


def test_warehouse_counts_equal_the_generators_truth(
    warehouse_url: str, world: World, sandbox: SandboxServer
) -> None:
    results = _sync_all(warehouse_url, sandbox, datetime.now(UTC))

    bad_users = {str(i) for i in world.truth.malformed("moodle", "users")}
    for spec in SPECS:
        result = results[spec.key]
        assert result.rows_read == world.truth.expected_count(spec.source, spec.stream), spec.key
    assert results["moodle.users"].rows_upserted == world.truth.expected_count("moodle", "users") - len(
        bad_users
    )

    enrollments = list(world.records("moodle", "enrollments"))
    bad_enrollments = {str(i) for i in world.truth.malformed("moodle", "enrollments")}
    valid_enrollments = [
        e for e in enrollments if str(e["id"]) not in bad_enrollments and str(e["userid"]) not in bad_users
    ]
    with psycopg.connect(warehouse_url) as conn:
        count = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
        assert count("SELECT count(*) FROM core.enrollment") == len(valid_enrollments)
        assert count("SELECT count(*) FROM core.course") == world.truth.expected_count("moodle", "courses")
        assert count("SELECT count(*) FROM core.donation") == (
            world.truth.expected_count("stripe", "charges") - len(world.truth.malformed("stripe", "charges"))
        )
        # Every malformed record is kept with its reason, none is dropped.
        for source, stream in (("moodle", "users"), ("stripe", "charges"), ("salesforce", "Contact")):
            quarantined = {
                row[0]
                for row in conn.execute(
                    "SELECT source_record_id FROM ops.quarantine WHERE source = %s AND stream = %s",
                    (source, stream),
                )
            }
            assert quarantined == {str(i) for i in world.truth.malformed(source, stream)}, (
                f"{source}.{stream}"
            )
        orphans = count(
            "SELECT count(*) FROM ops.quarantine WHERE stream = 'enrollments' AND reason LIKE 'unknown learner%'"
        )
        assert orphans == sum(
            1 for e in enrollments if str(e["userid"]) in bad_users and str(e["id"]) not in bad_enrollments
        )
        assert count("SELECT count(*) FROM raw.records") == sum(r.rows_read for r in results.values())
        # One audit event per stream import, with the counts.
        imports = conn.execute(
            "SELECT entity_type, details FROM audit.audit_events WHERE action = 'import'"
        ).fetchall()
        assert {entity for entity, _ in imports} == {spec.key for spec in SPECS}
        assert all(details["rows_read"] > 0 for _, details in imports)


def test_money_lands_to_the_cent_in_minor_units(
    warehouse_url: str, world: World, sandbox: SandboxServer
) -> None:
    _sync_all(warehouse_url, sandbox, datetime.now(UTC))
    bad = {str(i) for i in world.truth.malformed("stripe", "charges")}
    expected = {}
    for charge in world.records("stripe", "charges"):
        if charge["id"] not in bad:
            expected[charge["currency"].upper()] = (
                expected.get(charge["currency"].upper(), 0) + charge["amount"]
            )
    with psycopg.connect(warehouse_url) as conn:
        landed = dict(
            conn.execute(
                "SELECT currency, sum(amount_minor)::bigint FROM core.donation GROUP BY 1"
            ).fetchall()
        )
    assert landed == expected


def test_rerunning_the_same_interval_changes_nothing(warehouse_url: str, sandbox: SandboxServer) -> None:
    end = datetime.now(UTC)
    _sync_all(warehouse_url, sandbox, end)
    before = snapshot(warehouse_url, SNAPSHOT_TABLES)
    with psycopg.connect(warehouse_url) as conn:
        changes_before = conn.execute(
            "SELECT count(*) FROM audit.audit_events WHERE action <> 'import'"
        ).fetchone()[0]

    _sync_all(warehouse_url, sandbox, end, run="run-2")

    after = snapshot(warehouse_url, SNAPSHOT_TABLES)
    assert {t: after[t] for t in SNAPSHOT_TABLES if t != "ops.sync_watermark"} == {
        t: before[t] for t in SNAPSHOT_TABLES if t != "ops.sync_watermark"
    }
    with psycopg.connect(warehouse_url) as conn:
        changes_after = conn.execute(
            "SELECT count(*) FROM audit.audit_events WHERE action <> 'import'"
        ).fetchone()[0]
        watermarks = conn.execute("SELECT DISTINCT watermark FROM ops.sync_watermark").fetchall()
    assert changes_after == changes_before, "a re-run wrote row changes"
    assert watermarks == [(end,)]


def test_a_record_modified_exactly_at_the_watermark_is_not_lost(
    warehouse_url: str, world: World, sandbox: SandboxServer
) -> None:
    users = list(world.records("moodle", "users"))
    bad = {str(i) for i in world.truth.malformed("moodle", "users")}
    boundary_user = next(u for u in users[len(users) // 2 :] if str(u["id"]) not in bad)
    boundary = datetime.fromtimestamp(boundary_user["timemodified"], UTC)

    first = _sync(warehouse_url, sandbox, "moodle.users", boundary)
    with psycopg.connect(warehouse_url) as conn:
        known = lambda: conn.execute(  # noqa: E731
            "SELECT count(*) FROM core.person_source_id WHERE source = 'moodle.user' AND source_record_id = %s",
            (str(boundary_user["id"]),),
        ).fetchone()[0]
        assert known() == 0, "the window is half-open: the boundary record belongs to the next run"
        _sync(warehouse_url, sandbox, "moodle.users", datetime.now(UTC), start=boundary, run="run-2")
        assert known() == 1
    assert first.window_start is None


def test_rejected_records_are_kept_once_with_payload_and_reason(
    warehouse_url: str, world: World, sandbox: SandboxServer
) -> None:
    end = datetime.now(UTC)
    _sync(warehouse_url, sandbox, "stripe.charges", end)
    _sync(warehouse_url, sandbox, "stripe.charges", end, run="run-2")
    reasons = world.truth.malformed("stripe", "charges")
    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute("SELECT source_record_id, reason, payload FROM ops.quarantine").fetchall()
    assert len(rows) == len(reasons)
    for record_id, reason, payload in rows:
        assert payload["id"] == record_id
        category = reasons[record_id].replace("_", " ").split()[0]
        assert category in reason.replace("-", " "), (reasons[record_id], reason)


def test_a_source_that_refuses_the_credential_fails_its_stream_only(
    warehouse_url: str, sandbox: SandboxServer
) -> None:
    sandbox.faults.add(Fault("auth_failure", "stripe"))
    with pytest.raises(AuthError):
        _sync(warehouse_url, sandbox, "stripe.charges", datetime.now(UTC))
    result = _sync(warehouse_url, sandbox, "moodle.users", datetime.now(UTC))
    assert result.rows_upserted > 0
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("SELECT count(*) FROM raw.records WHERE source = 'stripe'").fetchone()[0] == 0
        assert (
            conn.execute("SELECT count(*) FROM ops.sync_watermark WHERE source = 'stripe'").fetchone()[0] == 0
        )


KILLED_SYNC = """
import json, sys
from datetime import datetime, UTC
from cdp.sources import registry
from cdp.sources.base import SourceSettings
from cdp.sync.engine import sync_stream
from cdp.sync.specs import spec_for
from cdp.warehouse import Actor
url, settings = sys.argv[1], json.loads(sys.argv[2])
spec = spec_for("stripe", "charges")
stream = registry.stream(
    "stripe", "charges", SourceSettings(settings["base_url"], settings["credential"], settings["extra"])
)
print("started", flush=True)
sync_stream(url, stream, spec, actor=Actor("doomed"), run_id="killed", interval_end=datetime.now(UTC))
"""


def test_a_killed_run_leaves_nothing_and_a_rerun_lands_everything(
    warehouse_url: str, world: World, sandbox: SandboxServer
) -> None:
    sandbox.faults.add(Fault("slow", "stripe", "charges", delay=0.7))
    settings = sandbox.settings("stripe")
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_SYNC, warehouse_url,
         json.dumps({"base_url": settings.base_url, "credential": settings.credential, "extra": dict(settings.extra)})],
        stdout=subprocess.PIPE, text=True, env=os.environ.copy(),
    )  # fmt: skip
    assert process.stdout.readline().strip() == "started"
    time.sleep(2.5)  # a few pages in, mid-transaction
    assert process.poll() is None, "the sync finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    with psycopg.connect(warehouse_url) as conn:
        for table in ("raw.records", "core.donation", "ops.sync_watermark", "ops.sync_run", "ops.quarantine"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table  # noqa: S608

    sandbox.faults.clear()
    result = _sync(warehouse_url, sandbox, "stripe.charges", datetime.now(UTC), run="rerun")
    assert result.rows_read == world.truth.expected_count("stripe", "charges")
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("SELECT count(*) FROM core.donation").fetchone()[0] == result.rows_upserted
        assert conn.execute("SELECT count(*) FROM raw.records").fetchone()[0] == result.rows_read


def test_overlap_window_reads_back_from_the_watermark() -> None:
    from cdp.sync.engine import read_window

    end = datetime(2026, 11, 23, 12, tzinfo=UTC)
    mark = datetime(2026, 11, 23, 10, tzinfo=UTC)
    overlap = timedelta(minutes=30)
    assert read_window(None, None, end, overlap) == (None, end)
    assert read_window(mark, mark, end, overlap) == (mark - overlap, end)
    # A backfill of an older interval reads from that interval's start, not from the newer watermark.
    old_start = datetime(2026, 11, 1, tzinfo=UTC)
    assert read_window(mark, old_start, old_start + timedelta(hours=2), overlap)[0] == old_start - overlap


def test_a_late_committed_record_stamped_before_the_watermark_is_caught_by_the_overlap(
    warehouse_url: str, world: World, sandbox: SandboxServer
) -> None:
    users = list(world.records("moodle", "users"))
    bad = {str(i) for i in world.truth.malformed("moodle", "users")}
    cut = datetime.fromtimestamp(sorted(u["timemodified"] for u in users)[len(users) // 2], UTC)
    late = next(u for u in users if u["timemodified"] > cut.timestamp() + 3600 and str(u["id"]) not in bad)

    _sync(warehouse_url, sandbox, "moodle.users", cut)
    # The source commits the record only now, stamped ten minutes before the watermark we already passed.
    world.touch("moodle", "users", [late["id"]], cut - timedelta(minutes=10))
    _sync(warehouse_url, sandbox, "moodle.users", cut + timedelta(hours=2), start=cut, run="run-2")

    with psycopg.connect(warehouse_url) as conn:
        found = conn.execute(
            "SELECT count(*) FROM core.person_source_id WHERE source = 'moodle.user' AND source_record_id = %s",
            (str(late["id"]),),
        ).fetchone()[0]
    assert found == 1
