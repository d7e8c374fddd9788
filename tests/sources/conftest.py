"""Fixtures for connector contract tests: a small seeded world and a sandbox server per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cdp.sources.base import SourceSettings
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer

START = datetime(2023, 1, 1, tzinfo=UTC)
END = datetime(2024, 1, 1, tzinfo=UTC)


def small_world(**overrides: Any) -> World:
    return World(**{"seed": 11, "learners": 1200, "start": START, "end": END, **overrides})


@pytest.fixture(scope="session")
def world() -> World:
    """Shared, read-only world; tests that edit records build their own."""
    return small_world()


class SleepRecorder:
    """Stands in for time.sleep so retry tests assert the waits without waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def sandbox(world: World, tmp_path: Path) -> Iterator[SandboxServer]:
    with SandboxServer(world, "127.0.0.1", 0, ledger_folder=tmp_path / "ledger") as server:
        yield server


@pytest.fixture
def settings_for(sandbox: SandboxServer, sleeps: SleepRecorder) -> Callable[..., SourceSettings]:
    """Sandbox settings with small pages (so paging is exercised) and recorded, instant retries."""

    def build(source: str, **extra: Any) -> SourceSettings:
        small_pages = {
            "moodle": {"page_size": 250},
            "salesforce": {"batch_size": 200},
            "stripe": {"page_size": 100},
            "typeform": {"page_size": 100},
            "zigpoll": {"page_size": 100},
            "ledger": {"page_size": 500},
            "zendesk": {"page_size": 100},
        }
        return sandbox.settings(
            source,
            **{
                **small_pages.get(source, {}),
                "sleep": sleeps,
                "retry_base_delay": 0.01,
                "max_attempts": 4,
                "timeout": 5,
                **extra,
            },
        )

    return build
