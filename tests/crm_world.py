"""Shared by the CRM push and completion trigger tests: a small sandbox world synced into the warehouse."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from cdp.sources import registry
from cdp.sync.engine import sync_stream
from cdp.sync.specs import spec_for
from cdp.warehouse import Actor
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer

LMS_STREAMS = ("moodle.users", "moodle.courses", "moodle.enrollments", "moodle.course_completions")
SYNC_END = datetime(2025, 1, 2, tzinfo=UTC)


def sync_lms(url: str, sandbox: SandboxServer, run_id: str = "sync-1") -> None:
    """Land the LMS people, courses, enrolments and completions, one transaction per stream, as cdp_sync does."""
    for key in LMS_STREAMS:
        spec = spec_for(*key.split("."))
        stream = registry.stream(spec.source, spec.stream, sandbox.settings(spec.source))
        sync_stream(url, stream, spec, actor=Actor("pytest"), run_id=run_id, interval_end=SYNC_END)


def eligible(url: str, purposes: tuple[str, ...]) -> set[str]:
    """Learners the outreach view holds for any of ``purposes``, read independently of the code under test."""
    with psycopg.connect(url) as conn:
        return {
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT e.person_id::text FROM mart.outreach_eligible e"
                " JOIN core.person p ON p.person_id = e.person_id"
                " WHERE e.purpose = ANY(%s) AND p.is_learner",
                (list(purposes),),
            )
        }


def refused(url: str, purpose: str, reason_prefix: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {
            row[0]
            for row in conn.execute(
                "SELECT person_id::text FROM mart.outreach_decision WHERE purpose = %s AND refusal_reason LIKE %s",
                (purpose, f"{reason_prefix}%"),
            )
        }


@pytest.fixture
def crm_world() -> World:
    return World(seed=3, learners=150)


@pytest.fixture
def crm_sandbox(crm_world: World) -> Iterator[SandboxServer]:
    with SandboxServer(crm_world) as server:
        yield server


@pytest.fixture
def synced(warehouse_url: str, crm_sandbox: SandboxServer) -> str:
    sync_lms(warehouse_url, crm_sandbox)
    return warehouse_url
