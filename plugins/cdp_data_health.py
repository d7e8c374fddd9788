"""Airflow plugin: the data-health page written by the ``cdp_data_health`` DAG, inside the Airflow UI.

A FastAPI app served by the Airflow API server under ``/cdp-data-health`` returns the latest page and its
JSON from the data-health folder (``CDP_DATA_HEALTH_DIR``, locally ``.cdp/data-health``); an external view
puts it in the UI's *Browse* menu, embedded in the Airflow page. Before the DAG's first run the app answers
with a short "no data yet" page rather than an error. The files are only read, never written, here.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse

from cdp.data_health import JSON_NAME, NO_DATA, PAGE_NAME, data_health_dir

URL_PREFIX = "/cdp-data-health"

app = FastAPI(title="CDP data health", docs_url=None, redoc_url=None, openapi_url=None)

WAITING_PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Data health</title></head><body>'
    f'<h1>Data health</h1><p class="empty">{NO_DATA}: the <code>cdp_data_health</code> DAG has not written '
    "the page yet. Trigger it in the Airflow UI.</p></body></html>"
)


@app.get("/", response_model=None)
def page() -> FileResponse | HTMLResponse:
    path = data_health_dir() / PAGE_NAME
    if not path.exists():
        return HTMLResponse(WAITING_PAGE)
    return FileResponse(path, media_type="text/html", headers={"Cache-Control": "no-cache"})


@app.get(f"/{JSON_NAME}", response_model=None)
def figures() -> FileResponse | HTMLResponse:
    path = data_health_dir() / JSON_NAME
    if not path.exists():
        return HTMLResponse('{"status": "no data yet"}', media_type="application/json")
    return FileResponse(path, media_type="application/json", headers={"Cache-Control": "no-cache"})


class CdpDataHealthPlugin(AirflowPlugin):
    name = "cdp_data_health"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "CDP data health"}]
    external_views = [
        {
            "name": "Data health",
            "href": URL_PREFIX.lstrip("/") + "/",
            "url_route": "data-health",
            "destination": "nav",
            "category": "browse",
        }
    ]
