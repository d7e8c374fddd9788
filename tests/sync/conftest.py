"""Helpers for syncing the survey, consent and referral streams from the sandbox."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

import psycopg
import pytest

from cdp.sources import registry
from cdp.sync.engine import SyncResult, sync_stream
from cdp.sync.specs import spec_for
from cdp.warehouse import Actor
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer

ACTOR = Actor("pytest")


@pytest.fixture
def survey_world() -> World:
    # A higher malformed rate than the default, so every survey and referral stream has planted rejects.
    return World(seed=11, learners=500, malformed_rate=0.03)


@pytest.fixture
def survey_sandbox(survey_world: World) -> Iterator[SandboxServer]:
    with SandboxServer(survey_world) as server:
        yield server


@pytest.fixture
def sync(warehouse_url: str, survey_sandbox: SandboxServer) -> Callable[..., SyncResult]:
    """sync("moodle.users", end, start=None, run="run-1"): one stream, one transaction, as the DAG does."""

    def run(key: str, end: datetime, start: datetime | None = None, run: str = "run-1") -> SyncResult:
        spec = spec_for(*key.split("."))
        stream = registry.stream(spec.source, spec.stream, survey_sandbox.settings(spec.source))
        return sync_stream(
            warehouse_url, stream, spec, actor=ACTOR, run_id=run, interval_end=end, interval_start=start
        )

    return run


@pytest.fixture
def quarantined(warehouse_url: str) -> Callable[[str, str], dict[str, str]]:
    """quarantined(source, stream): {source record id: reason} of what the warehouse holds back."""

    def read(source: str, stream: str) -> dict[str, str]:
        with psycopg.connect(warehouse_url) as conn:
            return dict(
                conn.execute(
                    "SELECT source_record_id, reason FROM ops.quarantine WHERE source = %s AND stream = %s",
                    (source, stream),
                ).fetchall()
            )

    return read


@pytest.fixture
def truth_people(warehouse_url: str, survey_world: World) -> Callable[[], dict[str, set[str]]]:
    """truth_people(): warehouse person id -> the generator's true persons of the Moodle users mapped to it."""

    def read() -> dict[str, set[str]]:
        with psycopg.connect(warehouse_url) as conn:
            rows = conn.execute(
                "SELECT person_id::text, source_record_id FROM core.person_source_id WHERE source = 'moodle.user'"
            ).fetchall()
        people: dict[str, set[str]] = {}
        for person, user_id in rows:
            people.setdefault(person, set()).add(
                survey_world.truth.person_of("moodle", "users", int(user_id))
            )
        return people

    return read
