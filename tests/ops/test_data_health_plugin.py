"""The data-health plugin as the Airflow API server mounts it: Airflow's own app (``create_app``, the auth
manager with its ``/auth`` login routes and middlewares, the plugin's app mounted by the server's own
``init_plugins``) in the test process, with SimpleAuthManager users and passwords of the test's own.

Nothing without Airflow's login: no token → 401 (a browser is sent to the login page), a bad token → 403,
a login whose role may not read the ``cdp_data_health`` DAG → 403; with the UI's cookie or a bearer
token from ``/auth/token`` → the latest page and its JSON, a "no data yet" page before the DAG's first run.
And what it serves holds no field value: quarantine reasons as their class, KPI errors as their kind.
"""

from __future__ import annotations

import importlib.util
import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from cdp import data_health
from cdp.warehouse import Actor

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "cdp_data_health.py"
PASSWORDS = {"viewer": secrets.token_urlsafe(12), "nobody": secrets.token_urlsafe(12)}
# What a record held back may carry, quoted by its validator into the reason (a name, an email, a birth
# date, an age, an amount): none of it may reach the page or its JSON.
VALUES = ("Ada Lovelace", "ada.lovelace@example.org", "2031-02-30", "1815-12-10", "age: 131", "12.30 EUR")
REASONS = {  # stream -> (the reason as the validator wrote it, the class the page shows)
    "users_dob": ("impossible date in date_of_birth: '2031-02-30'", "impossible date in date_of_birth"),
    "users_name": ("unknown value 'Ada Lovelace' in gender", "unknown value in gender"),
    "users_email": ("wrong type for email: 'ada.lovelace@example.org'", "wrong type for email"),
    "users_age": ("impossible age in age: 131", "impossible age in age"),
    "rewards": ("rewards: impossible date in date: '1815-12-10'", "rewards: impossible date in date"),
    "gifts": ("non-numeric amount in amount: '12.30 EUR'", "non-numeric amount in amount"),
}


def _load_plugin():
    spec = importlib.util.spec_from_file_location("cdp_data_health_plugin_under_test", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def plugin():
    return _load_plugin()


@pytest.fixture(scope="module")
def api_server(airflow_db: Path, plugin, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """Airflow's API server app with this plugin mounted the way ``airflow api-server`` mounts it."""
    from airflow import plugins_manager
    from airflow.api_fastapi import app as api_app

    passwords = tmp_path_factory.mktemp("auth") / "passwords.json"
    passwords.write_text(json.dumps(PASSWORDS))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(
            "AIRFLOW__CORE__AUTH_MANAGER",
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        )
        patch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
        # "nobody" logs in but has no role: SimpleAuthManager lets it read nothing.
        patch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "viewer:viewer,nobody:")
        patch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(passwords))
        patch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_urlsafe(64))
        # The server's plugin discovery reads the plugins folder; here it finds this one plugin.
        patch.setattr(
            plugins_manager, "get_fastapi_plugins", lambda: (plugin.CdpDataHealthPlugin.fastapi_apps, [])
        )
        api_app.purge_cached_app()
        app = api_app.create_app(apps="core")
        with TestClient(app, base_url="http://127.0.0.1:8080") as client:
            yield client
        api_app.purge_cached_app()


def _token(client: TestClient, user: str) -> str:
    answer = client.post("/auth/token", json={"username": user, "password": PASSWORDS[user]})
    assert answer.status_code == 201, answer.text
    return answer.json()["access_token"]


def _bearer(client: TestClient, user: str = "viewer") -> dict[str, str]:
    return {"Authorization": f"Bearer {_token(client, user)}"}


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CDP_DATA_HEALTH_DIR", str(tmp_path))
    return tmp_path


def test_the_plugin_mounts_its_app_and_a_ui_menu_entry(plugin, api_server: TestClient) -> None:
    from airflow.api_fastapi.app import RESERVED_URL_PREFIXES
    from airflow.plugins_manager import AirflowPlugin

    assert issubclass(plugin.CdpDataHealthPlugin, AirflowPlugin)
    (app,) = plugin.CdpDataHealthPlugin.fastapi_apps
    assert app["url_prefix"] == "/cdp-data-health" and app["app"] is plugin.app
    assert not any(app["url_prefix"].startswith(prefix) for prefix in RESERVED_URL_PREFIXES)
    assert any(getattr(route, "app", None) is plugin.app for route in api_server.app.routes), "mounted"
    (view,) = plugin.CdpDataHealthPlugin.external_views
    assert view["href"] == "cdp-data-health/", "relative, so that it works behind a path prefix"
    assert view["url_route"] == "data-health" and view["category"] == "browse"


def test_loading_the_plugin_leaves_the_api_server_out() -> None:
    """Every task process loads the plugins: the API server's security module is imported only when the
    plugin's app answers a request (in the API server, which has it anyway)."""
    probe = (
        "import importlib.util, sys;"
        f"spec = importlib.util.spec_from_file_location('probe', {str(PLUGIN)!r});"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec));"
        "print('airflow.api_fastapi.core_api.security' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=300
    )
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_without_a_login_nothing_is_served(api_server: TestClient, folder: Path) -> None:
    secret = "figures only a login may see"
    (folder / data_health.PAGE_NAME).write_text(f"<html><body>{secret}</body></html>")
    (folder / data_health.JSON_NAME).write_text(json.dumps({"secret": secret}))
    client = api_server
    client.cookies.clear()
    for path in ("/cdp-data-health/", "/cdp-data-health/data-health.json"):
        refused = client.get(path, headers={"Accept": "application/json"}, follow_redirects=False)
        assert refused.status_code == 401, (path, refused.status_code)
        assert secret not in refused.text
        forged = client.get(path, headers={"Authorization": "Bearer not-a-token"}, follow_redirects=False)
        assert forged.status_code == 403 and secret not in forged.text
        client.cookies.set("_token", "not-a-token")
        assert client.get(path, follow_redirects=False).status_code == 403
        client.cookies.clear()
    # A browser is sent to Airflow's login page, and back to the page after it.
    browser = client.get("/cdp-data-health/", headers={"Accept": "text/html,*/*"}, follow_redirects=False)
    assert browser.status_code == 303 and secret not in browser.text
    assert browser.headers["location"].startswith("/auth/login?next=")
    assert "cdp-data-health" in browser.headers["location"]


def test_a_login_that_may_not_read_the_dag_is_refused(api_server: TestClient, folder: Path) -> None:
    (folder / data_health.JSON_NAME).write_text(json.dumps({"secret": "x"}))
    headers = _bearer(api_server, "nobody")
    assert api_server.get("/api/v2/dags/cdp_data_health", headers=headers).status_code == 403, (
        "the same refusal as Airflow's own API gives this login"
    )
    for path in ("/cdp-data-health/", "/cdp-data-health/data-health.json"):
        refused = api_server.get(path, headers=headers)
        assert refused.status_code == 403 and "secret" not in refused.text


def test_before_the_first_run_the_page_says_no_data_yet(api_server: TestClient, folder: Path) -> None:
    headers = _bearer(api_server)
    page = api_server.get("/cdp-data-health/", headers=headers)
    assert page.status_code == 200 and "no data yet" in page.text
    assert api_server.get("/cdp-data-health/data-health.json", headers=headers).json() == {
        "status": "no data yet"
    }


def test_the_plugin_serves_what_the_dag_wrote(
    api_server: TestClient, folder: Path, warehouse_url: str
) -> None:
    written = data_health.build(warehouse_url, Actor("pytest"), folder)
    for how in ("bearer", "cookie"):  # an API client's token, or the cookie the UI sets at login
        api_server.cookies.clear()
        headers = _bearer(api_server)
        if how == "cookie":
            api_server.cookies.set("_token", headers.pop("Authorization").removeprefix("Bearer "))
        page = api_server.get("/cdp-data-health/", headers=headers)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), how
        assert page.text == Path(written["html"]).read_text()
        figures = api_server.get("/cdp-data-health/data-health.json", headers=headers).json()
        assert figures == json.loads(Path(written["json"]).read_text())
    api_server.cookies.clear()


def test_no_field_value_reaches_the_page_or_its_json(
    api_server: TestClient, folder: Path, warehouse_url: str
) -> None:
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        for stream, (reason, _) in REASONS.items():
            conn.execute(
                "INSERT INTO ops.quarantine (source, stream, source_record_id, run_id, reason, payload)"
                " VALUES ('moodle', %s, %s, 'pytest', %s, %s)",
                (stream, f"{stream}-1", reason, json.dumps({"name": VALUES[0], "email": VALUES[1]})),
            )
        # A KPI view that fails on a row's value: the database's message quotes it.
        conn.execute(
            "CREATE VIEW mart.kpi_test_leaky_monthly AS SELECT date_trunc('month', quarantined_at)::date AS month,"
            " (payload->>'name')::int AS numerator, 1 AS denominator, 1.0 AS value FROM ops.quarantine"
        )
        with pytest.raises(psycopg.errors.InvalidTextRepresentation, match=VALUES[0]):
            conn.execute("SELECT * FROM mart.kpi_test_leaky_monthly").fetchall()
    data_health.build(warehouse_url, Actor("pytest"), folder)
    headers = _bearer(api_server)
    page = api_server.get("/cdp-data-health/", headers=headers).text
    figures = api_server.get("/cdp-data-health/data-health.json", headers=headers).text
    for value in VALUES:
        assert value not in page and value not in figures, value
    for reason, _ in REASONS.values():
        assert reason not in figures
    top = {row["stream"]: row["top_reason"] for row in json.loads(figures)["quarantine"]}
    assert top == {stream: shown for stream, (_, shown) in REASONS.items()}
    for shown in top.values():
        assert shown in page
    (leaky,) = [kpi for kpi in json.loads(figures)["kpis"] if kpi["view"] == "mart.kpi_test_leaky_monthly"]
    assert leaky["error"] == "InvalidTextRepresentation (SQLSTATE 22P02)"
