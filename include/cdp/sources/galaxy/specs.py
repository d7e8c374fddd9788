"""Galaxy Digital's streams (the volunteer platform, adopted in migration phase 4): volunteers, their
shifts and their hours. Synced by the 2-hourly cdp_sync and by ``migration_phase4_platforms`` before its
checks, with the same engine."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cdp.sources import validation as v
from cdp.sources.spec import ACTIVITY, PEOPLE_AND_REFERENCE, RESOLVE_PEOPLE, StreamSpec, VendorPool

POOL = VendorPool("galaxy_api", 2, "Galaxy Digital volunteer platform")

GALAXY_TIME = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"
REFERENCES = "references.sql"  # a shift's or hours' volunteer


def _galaxy_time(path: str) -> v.Check:
    def check(record: Mapping[str, Any]) -> str | None:
        value = v.field(record, path)
        if value in (None, ""):
            return f"missing required field {path}"
        if not isinstance(value, str) or not re.match(GALAXY_TIME, value):
            return v.rejected(f"impossible date in {path}", value)
        # Checked under a flat name: the path may be nested (v.field would walk the dots of a flat key).
        reason, _ = v.split(v.iso_timestamp("value")({"value": value.replace(" ", "T") + "Z"}))
        return v.rejected(reason.replace(" in value", f" in {path}", 1), value) if reason else None

    return check


def _shift_order(record: Mapping[str, Any]) -> str | None:
    start, end = v.field(record, "shift.start"), v.field(record, "shift.end")
    if isinstance(start, str) and isinstance(end, str) and end <= start:
        return "impossible dates: shift.end not after shift.start"
    return None


def _positive_hours(record: Mapping[str, Any]) -> str | None:
    value = record.get("hour_hours")
    if value in (None, ""):
        return "missing required field hour_hours"
    if not re.match(r"^\d+(\.\d+)?$", str(value)) or float(value) * 60 < 1:
        return v.rejected("hours not a positive decimal in hour_hours", value)
    return None


SPECS: tuple[StreamSpec, ...] = (
    StreamSpec(
        "galaxy", "users", "core.volunteer", PEOPLE_AND_REFERENCE,
        v.all_of(
            v.required("id", "user_fname", "user_email"),
            v.email("user_email"),
            v.one_of("user_status", ("active", "inactive", "pending")),
            _galaxy_time("created_at"),
            _galaxy_time("updated_at"),
        ),
        ("users_people.sql", RESOLVE_PEOPLE, "users.sql"),
        person_source="galaxy.user",
        params=(("people_update", "fill"),),
        # Volunteers resolve to the LMS's and CRM's people, so they come last (the CRM's follow the LMS's).
        after=("salesforce.Contact",),
    ),
    StreamSpec(
        "galaxy", "responses", "core.volunteer_shift", ACTIVITY,
        v.all_of(
            v.required("id", "user.id", "need.id", "shift.id"),
            _galaxy_time("shift.start"),
            _galaxy_time("shift.end"),
            _shift_order,
            v.one_of("response_status", ("active", "inactive")),
        ),
        (REFERENCES, "responses.sql"),
        after=("galaxy.users",),
    ),
    StreamSpec(
        "galaxy", "hours", "core.volunteer_hours", ACTIVITY,
        v.all_of(
            v.required("id", "user.id", "hour_date_start"),
            _galaxy_time("hour_date_start"),
            _positive_hours,
            # The statuses the evidence lists; "inactive" is a deleted record (hours.sql).
            v.one_of("hour_status", ("approved", "inactive", "pending", "denied", "entered")),
        ),
        (REFERENCES, "hours.sql"),
        after=("galaxy.users",),
    ),
)  # fmt: skip
