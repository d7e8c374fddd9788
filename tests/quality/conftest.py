"""A sandbox world, its server, and the Slack connection pointed at the sandbox's webhook receiver."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer


@pytest.fixture
def world() -> World:
    return World(seed=23, learners=2500)


@pytest.fixture
def sandbox(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxServer]:
    with SandboxServer(world) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_SLACK_ALERTS",
            json.dumps({"conn_type": "slackwebhook", "password": server.slack_webhook_url}),
        )
        yield server
