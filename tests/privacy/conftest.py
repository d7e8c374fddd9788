"""Real login users for the privacy tests (cluster-wide roles, created through privacy.create_login)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

# The suite imports test modules with importlib (no package): make the shared seed helpers importable.
sys.path.insert(0, str(Path(__file__).parent))

from privacy_seed import url_for  # noqa: E402


@pytest.fixture
def logins(warehouse_url: str) -> Iterator:
    """Create real login users (cluster-wide roles) through privacy.create_login; dropped afterwards."""
    created: list[str] = []

    def create(role: str, organization_id: str | None = None) -> str:
        login = f"t_{role.removeprefix('cdp_')}_{uuid.uuid4().hex[:10]}"
        password = uuid.uuid4().hex
        with psycopg.connect(warehouse_url, autocommit=True) as conn:
            if role == "cdp_webhook":  # a process login, made like `cdp warehouse logins` does, not by people
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE cdp_webhook").format(
                        sql.Identifier(login), sql.Literal(password)
                    )
                )
            else:
                conn.execute(
                    "SELECT privacy.create_login(%s, %s, %s, %s)", (login, role, password, organization_id)
                )
        created.append(login)
        return url_for(warehouse_url, login, password)

    yield create
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        for login in created:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(login)))
