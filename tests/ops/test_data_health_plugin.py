"""The data-health plugin as the Airflow API server mounts it: the latest page and its JSON from the
data-health folder, a "no data yet" page before the DAG's first run, and a menu entry in the UI."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cdp import data_health
from cdp.warehouse import Actor

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "cdp_data_health.py"


def _load_plugin():
    spec = importlib.util.spec_from_file_location("cdp_data_health_plugin_under_test", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CDP_DATA_HEALTH_DIR", str(tmp_path))
    return tmp_path


def test_the_plugin_mounts_its_app_and_a_ui_menu_entry() -> None:
    from airflow.api_fastapi.app import RESERVED_URL_PREFIXES
    from airflow.plugins_manager import AirflowPlugin

    module = _load_plugin()
    assert issubclass(module.CdpDataHealthPlugin, AirflowPlugin)
    (app,) = module.CdpDataHealthPlugin.fastapi_apps
    assert app["url_prefix"] == "/cdp-data-health" and app["app"] is module.app
    assert not any(app["url_prefix"].startswith(prefix) for prefix in RESERVED_URL_PREFIXES)
    (view,) = module.CdpDataHealthPlugin.external_views
    assert view["href"] == "cdp-data-health/", "relative, so that it works behind a path prefix"
    assert view["url_route"] == "data-health" and view["category"] == "browse"


def test_before_the_first_run_the_page_says_no_data_yet(folder: Path) -> None:
    with TestClient(_load_plugin().app) as client:
        page = client.get("/")
        assert page.status_code == 200 and "no data yet" in page.text
        assert client.get("/data-health.json").json() == {"status": "no data yet"}


def test_the_plugin_serves_what_the_dag_wrote(folder: Path, warehouse_url: str) -> None:
    written = data_health.build(warehouse_url, Actor("pytest"), folder)
    with TestClient(_load_plugin().app) as client:
        page = client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert page.text == Path(written["html"]).read_text()
        assert client.get("/data-health.json").json() == json.loads(Path(written["json"]).read_text())
