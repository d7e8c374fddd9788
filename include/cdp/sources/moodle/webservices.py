"""Moodle over the web services REST protocol: the legacy ``local_cdp`` route, kept for the sandbox only.

Vendor docs followed: https://docs.moodle.org/dev/Creating_a_web_service_client (REST protocol:
``/webservice/rest/server.php``, ``wstoken``, ``wsfunction``, ``moodlewsrestformat=json``, PHP-style
array parameters) and moodle/moodle ``lib/db/services.php`` for function names. Errors come back as
HTTP 200 with ``{"exception", "errorcode", "message"}``; ``invalidtoken`` and ``accessexception``
mean our token is wrong or lacks the capability.

Moodle core offers no paged, modified-since listing of users or enrolments and no count functions,
so these incremental streams call ``local_cdp_*`` functions of a plugin that exists nowhere but in the
sandbox (``cdp_sandbox.moodle``). A stock Moodle answers them "invalid record": production reads Moodle's
own database instead (``cdp.sources.moodle.database``). This route is chosen only by ``extra.route =
"local_cdp"`` and stays until the sandbox serves its Moodle as a database; courses come from core
``core_course_get_courses`` (a full read).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import requests

from cdp.sources.base import AuthError, ContractError, SourceSettings, Stream, check_contract, epoch
from cdp.sources.http import HttpClient

SOURCE = "moodle"
REST_PATH = "/webservice/rest/server.php"
AUTH_ERRORS = {"invalidtoken", "accessexception", "servicerequireslogin", "usernotfullysetup"}


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Moodle's PHP-style form encoding: ``values[0]=1``, ``options[0][name]=ids``."""
    pairs: list[tuple[str, Any]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, Mapping):
            pairs.extend(flatten_params(value, name))
        elif isinstance(value, list | tuple):
            pairs.extend(flatten_params(dict(enumerate(value)), name))
        elif isinstance(value, bool):
            pairs.append((name, int(value)))
        else:
            pairs.append((name, value))
    return pairs


def _classify(response: requests.Response) -> Exception | None:
    if response.status_code == 200 and response.content[:14] == b'{"exception":"':
        body = response.json()
        code = body.get("errorcode", "")
        if code in AUTH_ERRORS:
            return AuthError(f"moodle: web service refused the token ({code})")
        return ContractError(f"moodle: {body.get('exception')} {code}: {body.get('message')}")
    return None


class MoodleClient:
    def __init__(self, settings: SourceSettings) -> None:
        self.settings = settings
        self.http = HttpClient(SOURCE, settings, classify=_classify)

    def call(self, function: str, **params: Any) -> Any:
        form = [
            ("wstoken", self.settings.credential),
            ("wsfunction", function),
            ("moodlewsrestformat", "json"),
            *flatten_params(params),
        ]
        return self.http.get_json(REST_PATH, method="POST", data=form)


class MoodleIncrementalStream:
    """A ``local_cdp`` listing read by (time, id) keyset within [since, until)."""

    def __init__(
        self,
        client: MoodleClient,
        name: str,
        function: str,
        items_key: str,
        cursor_field: str,
        count_entity: str,
        required: tuple[str, ...],
        page_size: int = 1000,
    ) -> None:
        self.client, self.function, self.items_key = client, function, items_key
        self.source, self.name, self.primary_key, self.cursor_field = SOURCE, name, "id", cursor_field
        self.count_entity, self.required_fields, self.page_size = count_entity, required, page_size

    def read(self, since: datetime | None, until: datetime | None) -> Iterator[list[dict]]:
        after_time, after_id = 0, 0
        while True:
            body = self.client.call(
                self.function,
                timefrom=epoch(since) or 0,
                timeto=epoch(until) or 0,
                aftertime=after_time,
                afterid=after_id,
                limitnumber=self.page_size,
            )
            if not isinstance(body, dict) or self.items_key not in body:
                raise ContractError(
                    f"moodle.{self.name}: {self.function} answered without {self.items_key!r}"
                )
            page = body[self.items_key]
            check_contract(SOURCE, self.name, page, self.required_fields)
            if page:
                yield page
                after_time, after_id = int(page[-1][self.cursor_field]), int(page[-1]["id"])
            if not body.get("hasmore") or not page:
                return

    def count(self, since: datetime, until: datetime) -> int:
        body = self.client.call(
            "local_cdp_count_records", entity=self.count_entity, timefrom=epoch(since), timeto=epoch(until)
        )
        try:
            return int(body["count"])
        except (KeyError, TypeError, ValueError) as error:
            raise ContractError("moodle: local_cdp_count_records answered without a count") from error


class MoodleCoursesStream:
    """Courses are few: core_course_get_courses returns them all at once (a full read)."""

    source, name, primary_key, cursor_field = SOURCE, "courses", "id", None
    required_fields = ("id", "shortname", "fullname", "startdate", "enddate", "timemodified")

    def __init__(self, client: MoodleClient, page_size: int = 500) -> None:
        self.client, self.page_size = client, page_size

    def read(self, since: datetime | None, until: datetime | None) -> Iterator[list[dict]]:
        courses = self.client.call("core_course_get_courses")
        if not isinstance(courses, list):
            raise ContractError("moodle.courses: core_course_get_courses did not answer a list")
        courses = [c for c in courses if c.get("format") != "site"]
        check_contract(SOURCE, self.name, courses, self.required_fields)
        for start in range(0, len(courses), self.page_size):
            yield courses[start : start + self.page_size]

    def count(self, since: datetime, until: datetime) -> int:
        return int(
            self.client.call(
                "local_cdp_count_records", entity="courses", timefrom=epoch(since), timeto=epoch(until)
            )["count"]
        )


USER_FIELDS = (
    "id",
    "username",
    "firstname",
    "lastname",
    "email",
    "timecreated",
    "timemodified",
    "customfields",
)


def local_cdp_streams(settings: SourceSettings) -> list[Stream]:
    client = MoodleClient(settings)
    size = int(settings.extra.get("page_size", 1000))
    return [
        MoodleIncrementalStream(
            client, "users", "local_cdp_get_users", "users", "timemodified", "users", USER_FIELDS, size
        ),
        MoodleCoursesStream(client),
        MoodleIncrementalStream(
            client,
            "enrollments",
            "local_cdp_get_enrolments",
            "enrolments",
            "timemodified",
            "enrolments",
            ("id", "userid", "courseid", "status", "timestart", "timeend", "timecreated", "timemodified"),
            size,
        ),
        MoodleIncrementalStream(
            client,
            "course_completions",
            "local_cdp_get_course_completions",
            "completions",
            "timecompleted",
            "completions",
            ("id", "userid", "course", "timeenrolled", "timestarted", "timecompleted"),
            size,
        ),
        MoodleIncrementalStream(
            client,
            "certificate_requests",
            "local_cdp_get_certificate_requests",
            "issues",
            "timecreated",
            "certificate_requests",
            ("id", "userid", "courseid", "code", "timecreated", "expires"),
            size,
        ),
    ]
