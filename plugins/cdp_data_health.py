"""Airflow plugin: the data-health page written by the ``cdp_data_health`` DAG, inside the Airflow UI.

A FastAPI app served by the Airflow API server under ``/cdp-data-health`` returns the latest page and its
JSON from the data-health folder (``CDP_DATA_HEALTH_DIR``, locally ``.cdp/data-health``); an external view
puts it in the UI's *Browse* menu, embedded in the Airflow page. Before the DAG's first run the app answers
with a short "no data yet" page rather than an error. The files are only read, never written, here.

Airflow does not authenticate a plugin's app (a mounted app inherits none of the core API's dependencies),
so this one does, with Airflow's own machinery: every route requires the API server's authenticated user
(the ``Authorization: Bearer`` token, or the ``_token`` cookie the UI sets at login) and that the auth
manager lets that user read the ``cdp_data_health`` DAG (SimpleAuthManager locally: any role; FAB or
another auth manager in production: whoever may see that DAG). Without a login the answer is 401 (a
browser asking for the page is sent to the login page instead), without the permission 403; never data.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from cdp.data_health import JSON_NAME, NO_DATA, PAGE_NAME, data_health_dir

URL_PREFIX = "/cdp-data-health"
DAG_ID = "cdp_data_health"


async def may_read_data_health(request: Request) -> None:
    """Airflow's own checks, as its core API makes them: the user from the bearer token or the UI's cookie
    (401/403 without a valid one), then the auth manager's answer to "may this user read the DAG?" (403).

    Imported here, not at the top: every task process loads the plugins, and only the API server needs these.
    """
    from airflow.api_fastapi.core_api import security

    user = await security.get_user(request, None, await security.bearer_scheme(request))
    await run_in_threadpool(security.requires_access_dag("GET", param_dag_id=DAG_ID), request, user)


app = FastAPI(
    title="CDP data health",
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
    dependencies=[Depends(may_read_data_health)],
)

WAITING_PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Data health</title></head><body>'
    f'<h1>Data health</h1><p class="empty">{NO_DATA}: the <code>cdp_data_health</code> DAG has not written '
    "the page yet. Trigger it in the Airflow UI.</p></body></html>"
)


@app.exception_handler(HTTPException)
async def _login_first(request: Request, error: HTTPException) -> Response:
    """A browser without a (valid) login is sent to the auth manager's login page, and back here after."""
    wants_page = request.method == "GET" and "text/html" in request.headers.get("accept", "")
    if error.status_code == 401 and wants_page:
        from airflow.api_fastapi.app import get_auth_manager

        return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), status_code=303)
    return await http_exception_handler(request, error)


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
