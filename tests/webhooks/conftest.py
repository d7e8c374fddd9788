"""The intake over the test's warehouse, and an app client for it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cdp.webhooks.app import create_app
from cdp.webhooks.intake import Intake

# The suite imports test modules with importlib (no package): make the shared helpers importable.
HERE = Path(__file__).parent
sys.path[:0] = [str(HERE), str(HERE.parent / "privacy")]

from webhook_requests import settings  # noqa: E402


@pytest.fixture
def intake(warehouse_url: str) -> Iterator[Intake]:
    instance = Intake(warehouse_url, settings())
    yield instance
    instance.close()


@pytest.fixture
def client(intake: Intake) -> Iterator[TestClient]:
    with TestClient(create_app(lambda: intake)) as test_client:
        yield test_client
