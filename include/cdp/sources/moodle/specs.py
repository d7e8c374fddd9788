"""Moodle's streams: learners and courses (people and reference), enrollments and completions (activity)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cdp.sources import validation as v
from cdp.sources.spec import (
    ACTIVITY,
    LAND_CONSENT,
    PEOPLE_AND_REFERENCE,
    REGISTRATION_CONSENT,
    RESOLVE_PEOPLE,
    StreamSpec,
    VendorPool,
)

POOL = VendorPool("moodle_api", 4, "Moodle's database (read-only login) or web services")

MOODLE_PARENTAL_CONSENT = ("", "none", "pending", "verified")
REFERENCES = "references.sql"  # an enrollment's or completion's learner and course


def moodle_custom_field(shortname: str, check: Callable[[Any], str | None]) -> v.Check:
    """Moodle keeps profile fields in a ``customfields`` list of {shortname, value}."""

    def run(record: Mapping[str, Any]) -> str | None:
        for item in record.get("customfields") or ():
            if item.get("shortname") == shortname:
                return check(item.get("value"))
        return None

    return run


def unless_deleted(check: v.Check) -> v.Check:
    """A deleted Moodle user keeps its id but Moodle scrambled the rest (email = an md5, username = email and
    time): its content is not checked, users_deleted.sql soft-deletes the identity instead."""

    def run(record: Mapping[str, Any]) -> str | None:
        if record.get("deleted") in (1, "1", True):
            return None
        return check(record)

    return run


SPECS: tuple[StreamSpec, ...] = (
    StreamSpec(
        "moodle", "users", "core.person", PEOPLE_AND_REFERENCE,
        v.all_of(
            v.required("id"),
            unless_deleted(
                v.all_of(
                    v.required("firstname", "email"),
                    v.email("email"),
                    moodle_custom_field("dateofbirth", lambda value: v.iso_date("dateofbirth")({"dateofbirth": value})),
                    moodle_custom_field(
                        "parentalconsent",
                        lambda value: (
                            None
                            if value in MOODLE_PARENTAL_CONSENT
                            else v.rejected("unknown value in parentalconsent", value)
                        ),
                    ),
                    moodle_custom_field(
                        "marketingconsent",
                        lambda value: (
                            None if value in ("", "0", "1") else v.rejected("unknown value in marketingconsent", value)
                        ),
                    ),
                )
            ),
        ),
        ("users.sql", RESOLVE_PEOPLE, "users_consent.sql", REGISTRATION_CONSENT, LAND_CONSENT, "users_deleted.sql"),
        person_source="moodle.user",
    ),
    StreamSpec(
        "moodle", "courses", "core.course", PEOPLE_AND_REFERENCE,
        v.all_of(v.required("id", "fullname"), v.epoch_order("startdate", "enddate")),
        ("courses.sql",),
    ),
    StreamSpec(
        "moodle", "enrollments", "core.enrollment", ACTIVITY,
        v.all_of(
            v.required("id", "userid", "courseid", "timestart"),
            v.one_of("status", (0, 1)),
            v.epoch_plausible("timestart"),
            v.epoch_order("timestart", "timeend"),
        ),
        (REFERENCES, "enrollments.sql"),
        params=(("course_field", "courseid"),),
        after=("moodle.users", "moodle.courses"),
    ),
    StreamSpec(
        "moodle", "course_completions", "core.course_completion", ACTIVITY,
        v.all_of(
            v.required("id", "userid", "course", "timecompleted"),
            v.epoch_plausible("timecompleted"),
            v.epoch_order("timestarted", "timecompleted", zero_means_open=False),
        ),
        (REFERENCES, "course_completions.sql"),
        params=(("course_field", "course"),),
        after=("moodle.users", "moodle.courses", "moodle.enrollments"),  # a completion closes its enrollment
    ),
)  # fmt: skip
