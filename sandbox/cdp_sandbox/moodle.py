"""Moodle in the sandbox: learners, courses, enrolments, completions and certificate requests, and the web
services that serve them.

Moodle (``/moodle``) — web services REST protocol, https://docs.moodle.org/dev/Web_service_API_functions
and moodle/moodle ``lib/db/services.php``: ``/webservice/rest/server.php`` with ``wstoken``, ``wsfunction``,
``moodlewsrestformat=json``; errors are HTTP 200 with ``{"exception", "errorcode", "message"}``.
Core functions served: ``core_webservice_get_site_info``, ``core_course_get_courses``,
``core_user_get_users_by_field``, ``core_enrol_get_enrolled_users`` (``limitfrom``/``limitnumber`` options).
Moodle core has no paged, modified-since listing of users or enrolments and no count functions, so a
real deployment that syncs incrementally installs a small read-only local plugin (see e.g. the public
``local_*_get_users_by_timemodified`` plugins). The sandbox implements the one we specify, ``local_cdp``:
``local_cdp_get_users``, ``local_cdp_get_enrolments``, ``local_cdp_get_course_completions``,
``local_cdp_get_certificate_requests`` (params ``timefrom`` inclusive, ``timeto`` exclusive, keyset
``aftertime``/``afterid``, ``limitnumber``; returns ``{<items>: [...], "hasmore": bool, "warnings": []}``
with core's column names) and ``local_cdp_count_records(entity, timefrom, timeto)`` -> ``{"count": n}``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from cdp.sources.base import SourceSettings
from cdp_sandbox import people
from cdp_sandbox.apis import Request, Response, VendorApis
from cdp_sandbox.core import PARENTAL_CONSENT, WorldCore
from cdp_sandbox.formats import DAY, impossible_date, int_or_none
from cdp_sandbox.names import COURSE_TOPICS, PARTNER_NAMES
from cdp_sandbox.tables import MALFORMED_REASONS, Table, tag

CREDENTIAL = "sandbox-moodle-wstoken-0001"


def settings(world: WorldCore, base_url: str, ledger_folder: object = None) -> SourceSettings:
    # The sandbox still serves its Moodle over the legacy local_cdp functions (cdp.sources.moodle.webservices);
    # its Moodle database (cdp_sandbox.moodle_db) is what the production route reads.
    return SourceSettings(
        f"{base_url}/moodle", world.credentials.for_source("moodle"), {"route": "local_cdp"}
    )


# ---------------------------------------------------------------- data
def build(world: WorldCore) -> None:
    """Moodle's tables; also ``world.moodle_user_row_of_person`` (the surveys name learners by Moodle id)."""
    rng = world.rng(2)
    n_learners = world.learners
    learner_rows = np.arange(n_learners)

    # The partner re-upload: partner 0's first batch, uploaded again months later.
    cohort = np.nonzero((world.partner[:n_learners] == 0) & (world.salt[:n_learners] % 3 == 0))[0]
    budget = int(round(world.duplicate_rate * n_learners))
    cohort = cohort[: max(0, budget // 4)]
    reupload_at = min(
        int(world.partner_batches[0, 0]) + 60 * DAY,
        world.end_ts - min(DAY, (world.end_ts - world.start_ts) // 8),
    )

    others = budget - cohort.shape[0]
    dup_persons = rng.integers(0, n_learners, max(others, 0))
    dup_variants = np.empty(dup_persons.shape[0], dtype=np.int8)
    for k, person in enumerate(dup_persons.tolist()):
        kinds = people.available_variants(
            int(world.culture[person]), int(world.given[person]), int(world.family[person])
        )
        dup_variants[k] = kinds[int(world.salt[person] + k) % len(kinds)]
    dup_created = world.draw_after(rng, world.registered[dup_persons], skew=3.0)

    persons = np.concatenate([learner_rows, dup_persons, cohort]).astype(np.int32)
    variants = np.concatenate(
        [
            np.zeros(n_learners, np.int8),
            dup_variants,
            np.full(cohort.shape[0], people.PARTNER_REUPLOAD, np.int8),
        ]
    )
    created = np.concatenate(
        [world.registered[:n_learners], dup_created, reupload_at + np.arange(cohort.shape[0]) % 600]
    ).astype(np.int64)
    order = np.argsort(created, kind="stable")
    persons, variants, created = persons[order], variants[order], created[order]
    modified = world.draw_edits(rng, created)
    malformed = world.draw_malformed(
        rng, persons.shape[0], ("missing_required", "malformed_email", "impossible_date", "unknown_enum")
    )
    world.moodle_user_row_of_person = np.full(world.person_count, -1, dtype=np.int64)
    canonical = variants == people.CANONICAL
    world.moodle_user_row_of_person[persons[canonical]] = np.nonzero(canonical)[0]

    first_user_id = 3  # 1 is the guest user, 2 the admin, as in a fresh Moodle
    users = world.add_table(
        Table(
            "moodle",
            "users",
            "id",
            "timemodified",
            "modified",
            created,
            modified,
            persons,
            malformed,
            builder=lambda i: _user(world, i),
            id_of=lambda i: i + first_user_id,
            index_of=lambda rid: int_or_none(rid, -first_user_id),
            columns={"variant": variants},
        )
    )

    n_courses = world.courses
    course_created = world.draw_times(rng, n_courses, world.start_ts - 365 * DAY, world.start_ts + 180 * DAY)
    world.add_table(
        Table(
            "moodle",
            "courses",
            "id",
            None,
            "modified",
            course_created,
            world.draw_edits(rng, course_created),
            np.full(n_courses, -1, np.int32),
            world.draw_malformed(rng, n_courses, ()),
            builder=lambda i: _course(world, i),
            id_of=lambda i: i + 2,
            index_of=lambda rid: int_or_none(rid, -2),
        )
    )

    n_enrol = world.enrollments
    user_rows = rng.integers(0, len(users), n_enrol)
    course_of = rng.integers(0, n_courses, n_enrol).astype(np.int32)
    enrol_created = world.draw_after(rng, np.maximum(users.created[user_rows], course_created[course_of]))
    order = np.argsort(enrol_created, kind="stable")
    user_rows, course_of, enrol_created = user_rows[order], course_of[order], enrol_created[order]
    enrol_status = (rng.random(n_enrol) < 0.08).astype(np.int8)
    world.add_table(
        Table(
            "moodle",
            "enrollments",
            "id",
            "timemodified",
            "modified",
            enrol_created,
            world.draw_edits(rng, enrol_created),
            users.person[user_rows],
            world.draw_malformed(rng, n_enrol, ("missing_required", "impossible_date", "unknown_enum")),
            builder=lambda i: _enrolment(world, i),
            id_of=lambda i: i + 1,
            index_of=lambda rid: int_or_none(rid, -1),
            columns={"user_row": user_rows, "course": course_of, "status": enrol_status},
        )
    )

    completes = (rng.random(n_enrol) < 0.45) & (enrol_status == 0)
    done_at = enrol_created + rng.integers(7 * DAY, 120 * DAY, n_enrol)
    completes &= done_at < world.end_ts
    completion_enrolment = np.nonzero(completes)[0]
    completed_at = done_at[completion_enrolment]
    order = np.argsort(completed_at, kind="stable")
    completion_enrolment, completed_at = completion_enrolment[order], completed_at[order]
    n_done = completion_enrolment.shape[0]
    world.add_table(
        Table(
            "moodle",
            "course_completions",
            "id",
            "timecompleted",
            "created",
            completed_at,
            completed_at.copy(),
            users.person[user_rows[completion_enrolment]],
            world.draw_malformed(rng, n_done, ("missing_required", "impossible_date")),
            builder=lambda i: _completion(world, i),
            id_of=lambda i: i + 1,
            index_of=lambda rid: int_or_none(rid, -1),
            columns={"enrolment": completion_enrolment},
        )
    )

    wants_certificate = rng.random(n_done) < 0.35
    requested_at = completed_at + rng.exponential(3 * DAY, n_done).astype(np.int64) + 300
    wants_certificate &= requested_at < world.end_ts
    certificate_completion = np.nonzero(wants_certificate)[0]
    certificate_at = requested_at[certificate_completion]
    order = np.argsort(certificate_at, kind="stable")
    certificate_completion, certificate_at = certificate_completion[order], certificate_at[order]
    completions = world.table("moodle", "course_completions")
    world.add_table(
        Table(
            "moodle",
            "certificate_requests",
            "id",
            "timecreated",
            "created",
            certificate_at,
            certificate_at.copy(),
            completions.person[certificate_completion],
            world.draw_malformed(
                rng, certificate_completion.shape[0], ("missing_required", "impossible_date")
            ),
            builder=lambda i: _certificate(world, i),
            id_of=lambda i: i + 1,
            index_of=lambda rid: int_or_none(rid, -1),
            columns={"completion": certificate_completion},
        )
    )


def _user(world: WorldCore, i: int) -> dict[str, Any]:
    table = world.tables[("moodle", "users")]
    person = int(table.person[i])
    variant = int(table.columns["variant"][i])
    reason = MALFORMED_REASONS[int(table.malformed[i])]
    parts = world.name(person, variant)
    user_id = i + 3
    email = world.email(person, variant)
    if reason == "malformed_email":
        email = people.break_email(email, user_id)
    elif reason == "missing_required":
        email = ""
    partner = int(world.partner[person])
    birth = world.birth_date(person)
    if reason == "impossible_date":
        birth = impossible_date(int(table.created[i]))
    consent = PARENTAL_CONSENT[int(world.parental_consent[person])]
    if reason == "unknown_enum":
        consent = "maybe"
    username = people.ascii_fold(email.split("@")[0]).lower() or f"user{user_id}"
    if variant == people.PARTNER_REUPLOAD:
        username = f"{username}_{user_id}"
    customfields = [
        {"type": "text", "value": birth or "", "name": "Date of birth", "shortname": "dateofbirth"},
        {"type": "menu", "value": consent, "name": "Parental consent", "shortname": "parentalconsent"},
        {
            "type": "checkbox",
            "value": "1" if world.marketing_opt_in[person] else "0",
            "name": "I agree to receive news by email",
            "shortname": "marketingconsent",
        },
        {"type": "text", "value": world.phone(person), "name": "Phone", "shortname": "phone"},
    ]
    created = int(table.created[i])
    return {
        "id": user_id,
        "username": username,
        "firstname": parts.given,
        "lastname": parts.family or "-",
        "fullname": f"{parts.given} {parts.family or '-'}",
        "email": email,
        "department": "",
        "institution": PARTNER_NAMES[partner] if partner >= 0 else "",
        "idnumber": "",
        "auth": "manual" if partner >= 0 else "email",
        "suspended": False,
        "confirmed": True,
        "lang": "en",
        "theme": "",
        "timezone": "99",
        "mailformat": 1,
        "description": "",
        "descriptionformat": 1,
        "city": "",
        "country": world.country_code(person),
        "firstaccess": created + 120,
        "lastaccess": int(table.modified[i]),
        "timecreated": created,
        "timemodified": int(table.modified[i]),
        "profileimageurlsmall": f"https://lms.example.org/theme/image.php/boost/core/1/u/f2?u={user_id}",
        "profileimageurl": f"https://lms.example.org/theme/image.php/boost/core/1/u/f1?u={user_id}",
        "customfields": customfields,
    }


def _course(world: WorldCore, i: int) -> dict[str, Any]:
    table = world.tables[("moodle", "courses")]
    topic = COURSE_TOPICS[i % len(COURSE_TOPICS)]
    cohort = i // len(COURSE_TOPICS) + 1
    created = int(table.created[i])
    return {
        "id": i + 2,
        "shortname": f"{topic[:12].upper().replace(' ', '')}-{cohort:02d}",
        "categoryid": 1 + i % 4,
        "categorysortorder": 10000 + i,
        "fullname": f"{topic} (cohort {cohort})",
        "displayname": f"{topic} (cohort {cohort})",
        "idnumber": "",
        "summary": f"<p>{topic}.</p>",
        "summaryformat": 1,
        "format": "topics",
        "showgrades": 1,
        "newsitems": 5,
        "startdate": created + 7 * DAY,
        "enddate": created + 97 * DAY,
        "numsections": 10,
        "maxbytes": 0,
        "showreports": 0,
        "visible": 1,
        "groupmode": 0,
        "groupmodeforce": 0,
        "defaultgroupingid": 0,
        "timecreated": created,
        "timemodified": int(table.modified[i]),
        "enablecompletion": 1,
        "completionnotify": 0,
        "lang": "",
        "forcetheme": "",
        "courseformatoptions": [],
        "showactivitydates": True,
        "showcompletionconditions": True,
    }


def _enrolment(world: WorldCore, i: int) -> dict[str, Any]:
    table = world.tables[("moodle", "enrollments")]
    user_row = int(table.columns["user_row"][i])
    course_id = int(table.columns["course"][i]) + 2
    reason = MALFORMED_REASONS[int(table.malformed[i])]
    created = int(table.created[i])
    partner = int(world.partner[int(table.person[i])])
    status: int = int(table.columns["status"][i])
    time_end = 0
    if reason == "unknown_enum":
        status = 7
    elif reason == "impossible_date":
        time_end = created - 30 * DAY
    return {
        "id": i + 1,
        "status": status,
        "enrolid": course_id * 3 + (0 if partner >= 0 else 1),
        "enrol": "manual" if partner >= 0 else "self",
        "courseid": course_id,
        "userid": None if reason == "missing_required" else user_row + 3,
        "timestart": created,
        "timeend": time_end,
        "modifierid": 2 if partner >= 0 else user_row + 3,
        "timecreated": created,
        "timemodified": int(table.modified[i]),
    }


def _completion(world: WorldCore, i: int) -> dict[str, Any]:
    table = world.tables[("moodle", "course_completions")]
    enrolments = world.tables[("moodle", "enrollments")]
    enrolment = int(table.columns["enrolment"][i])
    reason = MALFORMED_REASONS[int(table.malformed[i])]
    enrolled = int(enrolments.created[enrolment])
    completed = int(table.created[i])
    started = enrolled + DAY
    if reason == "impossible_date":
        started = completed + 30 * DAY
    return {
        "id": i + 1,
        "userid": None
        if reason == "missing_required"
        else int(enrolments.columns["user_row"][enrolment]) + 3,
        "course": int(enrolments.columns["course"][enrolment]) + 2,
        "timeenrolled": enrolled,
        "timestarted": started,
        "timecompleted": completed,
        "reaggregate": 0,
    }


def _certificate(world: WorldCore, i: int) -> dict[str, Any]:
    table = world.tables[("moodle", "certificate_requests")]
    completion = world.tables[("moodle", "course_completions")].record(int(table.columns["completion"][i]))
    reason = MALFORMED_REASONS[int(table.malformed[i])]
    created = int(table.created[i])
    return {
        "id": i + 1,
        "userid": completion["userid"],
        "templateid": 1 + completion["course"] % 3,
        "code": "" if reason == "missing_required" else f"{tag(world.seed, f'cert{i}', 10)}",
        "emailed": 1,
        "timecreated": created,
        "expires": created - DAY if reason == "impossible_date" else 0,
        "data": "{}",
        "component": "mod_coursecertificate",
        "courseid": completion["course"],
    }


# ---------------------------------------------------------------- the API
def api(apis: VendorApis) -> Callable[[Request], Response]:
    return functools.partial(handle, apis)


ENTITIES = {
    "local_cdp_get_users": ("users", "users", "timemodified"),
    "local_cdp_get_enrolments": ("enrollments", "enrolments", "timemodified"),
    "local_cdp_get_course_completions": ("course_completions", "completions", "timecompleted"),
    "local_cdp_get_certificate_requests": ("certificate_requests", "issues", "timecreated"),
}
COUNT_ENTITIES = {
    "users": "users",
    "enrolments": "enrollments",
    "completions": "course_completions",
    "certificate_requests": "certificate_requests",
    "courses": "courses",
}


def _exception(
    errorcode: str, message: str, exception: str = "moodle_exception", debuginfo: str | None = None
) -> Response:
    body: dict[str, Any] = {"exception": exception, "errorcode": errorcode, "message": message}
    if debuginfo:
        body["debuginfo"] = debuginfo
    return Response(200, body)  # Moodle reports web service errors with HTTP 200


def handle(apis: VendorApis, request: Request) -> Response:
    if not request.path.endswith("/webservice/rest/server.php"):
        return Response(404, b"<html><body>404 Not Found</body></html>", content_type="text/html")
    form = request.form()
    params = _moodle_params(form)
    function = params.get("wsfunction", "")
    stream = ENTITIES.get(function, (None,))[0]
    if function == "local_cdp_count_records":
        stream = COUNT_ENTITIES.get(str(params.get("entity")))
    fault_response = apis.request_faults(
        "moodle",
        stream,
        {
            "rate_limit": lambda f: Response(
                429,
                b"<html><body><h1>429 Too Many Requests</h1></body></html>",
                {"Retry-After": str(f.retry_after)},
                "text/html",
            ),
            "server_error": lambda f: Response(
                f.status,
                b"<html><body><h1>500 Internal Server Error</h1></body></html>",
                content_type="text/html",
            ),
            "auth_failure": lambda f: _exception("invalidtoken", "Invalid token - token not found"),
        },
    )
    if fault_response:
        return fault_response
    if params.get("wstoken") != apis.world.credentials.moodle:
        return _exception("invalidtoken", "Invalid token - token not found")
    if params.get("moodlewsrestformat", "xml") != "json":
        return Response(
            200,
            b'<?xml version="1.0" encoding="UTF-8" ?><RESPONSE></RESPONSE>',
            content_type="application/xml",
        )
    try:
        if function in ENTITIES:
            return Response(200, _local_listing(apis, function, params))
        if function == "local_cdp_count_records":
            table_stream = COUNT_ENTITIES.get(str(params.get("entity")))
            if table_stream is None:
                raise ValueError(f"entity: unknown value {params.get('entity')!r}")
            table = apis.world.table("moodle", table_stream)
            count = table.count(_int_param(params, "timefrom"), _int_param(params, "timeto") or None)
            return Response(200, {"count": count, "warnings": []})
        if function == "core_webservice_get_site_info":
            return Response(200, _site_info(apis))
        if function == "core_course_get_courses":
            courses = apis.listing("moodle", "courses")
            rows = courses.table.window(None, None).tolist()
            wanted = {int(v) for v in params.get("options", {}).get("ids", [])}
            records = courses.render(rows)
            return Response(200, [c for c in records if not wanted or c["id"] in wanted])
        if function == "core_user_get_users_by_field":
            return Response(200, _users_by_field(apis, params))
        if function == "core_enrol_get_enrolled_users":
            return Response(200, _enrolled_users(apis, params))
    except (ValueError, KeyError, TypeError) as error:
        return _exception(
            "invalidparameter",
            "Invalid parameter value detected",
            "invalid_parameter_exception",
            str(error),
        )
    return _exception(
        "invalidrecord",
        "Can't find data record in database table external_functions.",
        "dml_missing_record_exception",
    )


def _local_listing(apis: VendorApis, function: str, params: dict[str, Any]) -> dict[str, Any]:
    stream, key, _ = ENTITIES[function]
    listing = apis.listing("moodle", stream)
    limit = max(1, min(_int_param(params, "limitnumber") or 1000, 5000))
    after = None
    if params.get("afterid") not in (None, "", "0"):
        after_index = listing.table.index_of(int(params["afterid"]))
        after = (_int_param(params, "aftertime"), after_index)
    rows, more = listing.page(
        _int_param(params, "timefrom"), _int_param(params, "timeto") or None, limit, after=after
    )
    return {key: listing.encoded(rows), "hasmore": more, "warnings": []}


def _site_info(apis: VendorApis) -> dict[str, Any]:
    functions = [
        "core_webservice_get_site_info",
        "core_course_get_courses",
        "core_user_get_users_by_field",
        "core_enrol_get_enrolled_users",
        "local_cdp_count_records",
        *ENTITIES,
    ]
    return {
        "sitename": "Nonprofit Learning (sandbox)",
        "username": "cdp_sync",
        "firstname": "CDP",
        "lastname": "Sync",
        "fullname": "CDP Sync",
        "lang": "en",
        "userid": 2,
        "siteurl": "https://lms.example.org",
        "userpictureurl": "",
        "functions": [{"name": name, "version": "2024042200"} for name in functions],
        "downloadfiles": 0,
        "uploadfiles": 0,
        "release": "4.4 (Build: 20240422)",
        "version": "2024042200",
        "mobilecssurl": "",
        "advancedfeatures": [],
        "usercanmanageownfiles": False,
        "userquota": 0,
        "usermaxuploadfilesize": -1,
        "userhomepage": 1,
        "siteid": 1,
        "sitecalendartype": "gregorian",
        "usercalendartype": "gregorian",
    }


def _users_by_field(apis: VendorApis, params: dict[str, Any]) -> list[dict[str, Any]]:
    if params.get("field") != "id":
        raise ValueError("field: only 'id' is supported by the sandbox")
    listing = apis.listing("moodle", "users")
    rows = []
    for value in params.get("values", []):
        index = listing.table.index_of(int(value))
        if index is not None and 0 <= index < len(listing.table) and index not in listing.excluded:
            rows.append(index)
    return listing.render(rows)


def _enrolled_users(apis: VendorApis, params: dict[str, Any]) -> list[dict[str, Any]]:
    course_id = int(params["courseid"])
    options = {o.get("name"): o.get("value") for o in params.get("options", []) if isinstance(o, dict)}
    enrolments = apis.world.table("moodle", "enrollments")
    user_rows = np.unique(enrolments.columns["user_row"][enrolments.columns["course"] == course_id - 2])
    start = int(options.get("limitfrom") or 0)
    stop = start + int(options["limitnumber"]) if options.get("limitnumber") else None
    users = apis.listing("moodle", "users")
    return users.render([int(r) for r in user_rows[start:stop]])


def _moodle_params(form: dict[str, list[str]]) -> dict[str, Any]:
    """Decode Moodle's PHP-style array parameters (``values[0]=1``, ``options[0][name]=x``)."""
    result: dict[str, Any] = {}
    for raw_key, values in form.items():
        value = values[-1]
        parts = re.findall(r"[^\[\]]+", raw_key)
        if not parts:
            continue
        node: Any = result
        for position, part in enumerate(parts):
            last = position == len(parts) - 1
            key: Any = int(part) if part.isdigit() else part
            if isinstance(node, dict):
                if last:
                    node[key] = value
                else:
                    node = node.setdefault(key, {})
        del node
    return {key: _listify(value) for key, value in result.items()}


def _listify(value: Any) -> Any:
    if isinstance(value, dict):
        converted = {k: _listify(v) for k, v in value.items()}
        if converted and all(isinstance(k, int) for k in converted):
            return [converted[k] for k in sorted(converted)]
        return converted
    return value


def _int_param(params: dict[str, Any], name: str) -> int:
    value = params.get(name)
    return int(value) if value not in (None, "") else 0
