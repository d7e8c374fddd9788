"""The embedded server: starts on loopback with a password, survives restarts, keeps its data."""

from __future__ import annotations

import socket
from pathlib import Path

import psycopg
import pytest

from cdp.warehouse import configured_url, embedded, normalise_url, resolve_url
from cdp.warehouse.embedded import EmbeddedServer


def test_server_restarts_with_its_data_and_refuses_a_wrong_password(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path / "wh")
    try:
        server.start()
        server.ensure_database()
        with psycopg.connect(server.url()) as conn:
            conn.execute("CREATE TABLE kept (value int)")
            conn.execute("INSERT INTO kept VALUES (42)")
        server.stop()
        assert not server.is_running()

        server.start()
        with psycopg.connect(server.url()) as conn:
            assert conn.execute("SELECT value FROM kept").fetchone() == (42,)

        wrong = server.url().replace(server.url().split(":")[2].split("@")[0], "not-the-password")
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(wrong)
    finally:
        server.destroy()
    assert not (tmp_path / "wh").exists()


def test_a_port_taken_before_postgres_binds_it_is_replaced_by_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = EmbeddedServer(tmp_path / "wh")
    try:
        server.start()
        server.stop()
        with socket.socket() as holder:
            # The race: the saved port looks free when checked, and another process holds it by the time
            # PostgreSQL binds it.
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            taken = holder.getsockname()[1]
            settings = server._settings()
            server._save_settings({**settings, "port": taken})
            monkeypatch.setattr(embedded, "port_is_free", lambda port: True)

            server.start()

            port = server._settings()["port"]
            assert port != taken
            with psycopg.connect(server.url("postgres")) as conn:
                assert conn.execute("SELECT current_setting('port')::int").fetchone() == (port,)
    finally:
        server.destroy()


def test_configured_connection_wins_over_the_embedded_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", "postgres://loader:s3cret@db.internal:5433/warehouse")
    assert configured_url() == "postgresql://loader:s3cret@db.internal:5433/warehouse"
    assert resolve_url() == "postgresql://loader:s3cret@db.internal:5433/warehouse"


def test_airflow_json_connection_form_is_understood() -> None:
    url = normalise_url(
        '{"conn_type": "postgres", "login": "u", "password": "p@ss", "host": "h", "port": 5432, "schema": "wh"}'
    )
    assert url == "postgresql://u:p%40ss@h:5432/wh"
