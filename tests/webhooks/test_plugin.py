"""The Airflow plugin: its FastAPI app as the API server mounts it, secrets from an Airflow connection,
and the Asset event in Airflow's metadata database."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from webhook_requests import SECRETS, TYPEFORM_FORM, signed, typeform_payload

from cdp.webhooks import WEBHOOK_ASSET_NAME, WEBHOOK_ASSET_URI

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "cdp_webhooks.py"


def _load_plugin():
    spec = importlib.util.spec_from_file_location("cdp_webhooks_plugin_under_test", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_plugin_mounts_one_fastapi_app_outside_airflows_reserved_prefixes() -> None:
    from airflow.api_fastapi.app import RESERVED_URL_PREFIXES
    from airflow.plugins_manager import AirflowPlugin

    module = _load_plugin()
    assert issubclass(module.CdpWebhooksPlugin, AirflowPlugin)
    (app,) = module.CdpWebhooksPlugin.fastapi_apps
    assert app["url_prefix"] == "/cdp-webhooks" and app["app"] is module.webhook_app
    assert not any(app["url_prefix"].startswith(prefix) for prefix in RESERVED_URL_PREFIXES)


def test_the_plugin_takes_its_secret_from_the_airflow_connection(
    airflow_db, warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDP_WAREHOUSE_URL", warehouse_url)
    monkeypatch.setenv(
        "AIRFLOW_CONN_WEBHOOK_TYPEFORM",
        json.dumps(
            {"conn_type": "generic", "password": SECRETS["typeform"], "extra": {"forms": {TYPEFORM_FORM: ""}}}
        ),
    )
    module = _load_plugin()
    with TestClient(module.webhook_app) as client:
        body, headers = signed("typeform", typeform_payload("EVT-PLUGIN"))
        assert client.post("/typeform", content=body, headers=headers).json()["status"] == "accepted"
        # Zigpoll has no connection and no variable here: it is not configured, so refused.
        body, headers = signed("zigpoll", {"id": "x"})
        assert client.post("/zigpoll", content=body, headers=headers).status_code == 404
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("SELECT source_record_id FROM raw.records").fetchall() == [("EVT-PLUGIN",)]


def test_the_asset_event_reaches_airflows_metadata_database(airflow_db) -> None:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        if session.scalar(select(AssetModel).where(AssetModel.uri == WEBHOOK_ASSET_URI)) is None:
            session.add(AssetModel(name=WEBHOOK_ASSET_NAME, uri=WEBHOOK_ASSET_URI, group="asset"))
    module = _load_plugin()
    module.emit_asset_event(3)
    with create_session() as session:
        extras = [
            event.extra
            for event in session.scalars(
                select(AssetEvent)
                .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                .where(AssetModel.uri == WEBHOOK_ASSET_URI)
            )
        ]
    assert {"landed": 3} in extras
