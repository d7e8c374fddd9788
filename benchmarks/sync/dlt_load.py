"""The dlt side of the sync benchmark: dlt's ``rest_api`` source reading the sandbox into PostgreSQL.

Run by ``bench_sync.py`` inside ``benchmarks/.venv-sync`` (dlt is not a project dependency):

    python dlt_load.py POSTGRES_URL SETTINGS_JSON STREAMS WORKDIR

Each vendor's paging is declared the way dlt's documentation says to: built-in paginators where one fits,
a small ``BasePaginator`` subclass where the vendor's cursor needs one (Stripe's ``starting_after``,
Moodle's keyset plugin, Typeform's ``after`` token). dlt's own defaults otherwise (extract, normalise,
load with its default file format and workers). Prints one JSON line: seconds and source rows loaded.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import dlt
import psycopg2
from dlt.sources.helpers.rest_client.paginators import BasePaginator, SinglePagePaginator
from dlt.sources.rest_api import rest_api_source

MOODLE_FUNCTIONS = {
    "users": ("local_cdp_get_users", "users", "timemodified"),
    "enrollments": ("local_cdp_get_enrolments", "enrolments", "timemodified"),
    "course_completions": ("local_cdp_get_course_completions", "completions", "timecompleted"),
}


class MoodleKeysetPaginator(BasePaginator):
    """The local_cdp plugin pages by (time, id) after the last row, with a `hasmore` flag."""

    def __init__(self, cursor_field: str) -> None:
        super().__init__()
        self.cursor_field = cursor_field
        self.after: tuple[int, int] | None = None

    def update_state(self, response: Any, data: list[Any] | None = None) -> None:
        body = response.json()
        if body.get("hasmore") and data:
            self.after = (int(data[-1][self.cursor_field]), int(data[-1]["id"]))
        else:
            self._has_next_page = False

    def update_request(self, request: Any) -> None:
        assert self.after is not None
        request.data = {**request.data, "aftertime": self.after[0], "afterid": self.after[1]}


class StripeCursorPaginator(BasePaginator):
    def update_state(self, response: Any, data: list[Any] | None = None) -> None:
        body = response.json()
        self.last_id = data[-1]["id"] if data else None
        self._has_next_page = bool(body.get("has_more")) and self.last_id is not None

    def update_request(self, request: Any) -> None:
        request.params = {**(request.params or {}), "starting_after": self.last_id}


class TypeformTokenPaginator(BasePaginator):
    def __init__(self, page_size: int) -> None:
        super().__init__()
        self.page_size = page_size

    def update_state(self, response: Any, data: list[Any] | None = None) -> None:
        items = response.json().get("items", [])
        self.after = items[-1]["token"] if items else None
        self._has_next_page = len(items) == self.page_size and self.after is not None

    def update_request(self, request: Any) -> None:
        params = {k: v for k, v in (request.params or {}).items() if k != "sort"}
        request.params = {**params, "after": self.after}


class ZigpollCursorPaginator(BasePaginator):
    def update_state(self, response: Any, data: list[Any] | None = None) -> None:
        body = response.json()
        self.cursor = body.get("endCursor")
        self._has_next_page = bool(body.get("hasNextPage")) and bool(data) and bool(self.cursor)

    def update_request(self, request: Any) -> None:
        request.params = {**(request.params or {}), "startCursor": self.cursor}


def moodle(settings: dict, names: list[str]) -> Any:
    token = settings["credential"]
    resources: list[dict] = []
    for name in names:
        form = {"wstoken": token, "moodlewsrestformat": "json"}
        if name == "courses":
            endpoint = {
                "path": "webservice/rest/server.php",
                "method": "POST",
                "data": {**form, "wsfunction": "core_course_get_courses"},
                "data_selector": "$",
                "paginator": SinglePagePaginator(),
            }
        else:
            function, items, cursor = MOODLE_FUNCTIONS[name]
            endpoint = {
                "path": "webservice/rest/server.php",
                "method": "POST",
                "data": {**form, "wsfunction": function, "limitnumber": 1000, "aftertime": 0, "afterid": 0},
                "data_selector": items,
                "paginator": MoodleKeysetPaginator(cursor),
            }
        resources.append({"name": f"moodle_{name}", "endpoint": endpoint, "primary_key": "id"})
    return rest_api_source(
        {"client": {"base_url": settings["base_url"] + "/"}, "resources": resources}, name="moodle"
    )


def stripe(settings: dict, names: list[str]) -> Any:
    return rest_api_source(
        {
            "client": {
                "base_url": settings["base_url"] + "/",
                "auth": {"type": "bearer", "token": settings["credential"]},
            },
            "resources": [
                {
                    "name": f"stripe_{name}",
                    "primary_key": "id",
                    "endpoint": {
                        "path": f"v1/{name}",
                        "params": {"limit": 100},
                        "data_selector": "data",
                        "paginator": StripeCursorPaginator(),
                    },
                }
                for name in names
            ],
        },
        name="stripe",
    )


def typeform(settings: dict, names: list[str]) -> Any:
    return rest_api_source(
        {
            "client": {
                "base_url": settings["base_url"] + "/",
                "auth": {"type": "bearer", "token": settings["credential"]},
            },
            "resources": [
                {
                    "name": "typeform_responses",
                    "primary_key": "response_id",
                    "endpoint": {
                        "path": f"forms/{settings['form_id']}/responses",
                        "params": {"page_size": 1000, "sort": "submitted_at,asc"},
                        "data_selector": "items",
                        "paginator": TypeformTokenPaginator(1000),
                    },
                }
            ],
        },
        name="typeform",
    )


def zigpoll(settings: dict, names: list[str]) -> Any:
    resources = []
    for name in names:
        params: dict[str, Any] = {"accountId": settings["account_id"], "limit": 100}
        if name == "responses":
            params["pollId"] = settings["poll_id"]
        resources.append(
            {
                "name": f"zigpoll_{name}",
                "primary_key": "_id",
                "endpoint": {
                    "path": name,
                    "params": params,
                    "data_selector": "data",
                    "paginator": ZigpollCursorPaginator(),
                },
            }
        )
    return rest_api_source(
        {
            "client": {
                "base_url": settings["base_url"] + "/",
                "auth": {
                    "type": "api_key",
                    "name": "Authorization",
                    "api_key": settings["credential"],
                    "location": "header",
                },
            },
            "resources": resources,
        },
        name="zigpoll",
    )


SOURCES = {"moodle": moodle, "stripe": stripe, "typeform": typeform, "zigpoll": zigpoll}


def main() -> int:
    url, settings_json, streams_arg, workdir = sys.argv[1:5]
    settings = json.loads(settings_json)
    wanted: dict[str, list[str]] = {}
    for key in streams_arg.split(","):
        source, name = key.split(".", 1)
        wanted.setdefault(source, []).append(name)
    pipeline = dlt.pipeline(
        pipeline_name="bench_sync",
        pipelines_dir=workdir,
        destination=dlt.destinations.postgres(credentials=url),
        dataset_name="sandbox",
    )
    sources = [SOURCES[source](settings[source], names) for source, names in wanted.items()]
    started = time.perf_counter()
    for source in sources:
        pipeline.run(source)
    seconds = time.perf_counter() - started
    rows = 0
    with psycopg2.connect(url) as conn, conn.cursor() as cursor:
        for source, names in wanted.items():
            for name in names:
                cursor.execute(f"SELECT count(*) FROM sandbox.{source}_{name.lower()}")
                rows += cursor.fetchone()[0]
    peak = next(
        int(line.split()[1]) / 1024
        for line in open("/proc/self/status").read().splitlines()  # noqa: SIM115
        if line.startswith("VmHWM:")
    )
    print(json.dumps({"seconds": seconds, "rows": rows, "peak_rss_mib": peak}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
