"""A world with enough referrals for every planted discrepancy kind, its sandbox, and syncs as the DAG does."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cdp.sources import registry
from cdp.sync.engine import SyncResult, sync_stream
from cdp.sync.specs import spec_for
from cdp.warehouse import Actor
from cdp_sandbox.generator import World
from cdp_sandbox.legacy_referrals import LegacySheet, legacy_sheet
from cdp_sandbox.server import SandboxServer

ACTOR = Actor("pytest")
WORLD_END = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def referral_world() -> World:
    return World(seed=23, learners=1500, malformed_rate=0.02)


@pytest.fixture
def sheet(referral_world: World) -> LegacySheet:
    return legacy_sheet(referral_world)


@pytest.fixture
def sheet_csv(sheet: LegacySheet, tmp_path: Path) -> Path:
    return sheet.write_csv(tmp_path / "legacy_referrals.csv")


@pytest.fixture
def referral_sandbox(referral_world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxServer]:
    with SandboxServer(referral_world) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_SLACK_ALERTS",
            json.dumps({"conn_type": "slackwebhook", "password": server.slack_webhook_url}),
        )
        yield server


@pytest.fixture
def referral_sync(warehouse_url: str, referral_sandbox: SandboxServer) -> Callable[..., SyncResult]:
    """referral_sync("moodle.users", end=WORLD_END, start=None, run="run-1"): one stream, as cdp_sync does."""

    def run(
        key: str, end: datetime = WORLD_END, start: datetime | None = None, run: str = "run-1"
    ) -> SyncResult:
        spec = spec_for(*key.split("."))
        stream = registry.stream(spec.source, spec.stream, referral_sandbox.settings(spec.source))
        return sync_stream(
            warehouse_url, stream, spec, actor=ACTOR, run_id=run, interval_end=end, interval_start=start
        )

    return run


@pytest.fixture
def synced(referral_sync: Callable[..., SyncResult]) -> None:
    """Learners and the ReferralHero subscribers (with their rewards), synced to the world's end."""
    for key in ("moodle.users", "referralhero.subscribers"):
        referral_sync(key)


@pytest.fixture
def synced_learning(synced: None, referral_sync: Callable[..., SyncResult]) -> None:
    """As ``synced``, plus courses and enrolments (who is an active learner, who signs up)."""
    for key in ("moodle.courses", "moodle.enrollments"):
        referral_sync(key)
