"""Quarantine reasons carry no field values: staff roles (and the data-health page) read ``reason``; the value a
check refused is in ``reason_value``, which only the roles that read the record's payload may read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from cdp.sources import validation as v
from cdp.sync.engine import sync_stream
from cdp.sync.specs import spec_for
from cdp.warehouse import Actor, migrations

IMPOSSIBLE_BIRTH_DATE = "1871-02-30"
SENTINEL = "zz-sentinel-7"

# One refusing record per validator that once quoted the value: the check, and the record it refuses.
QUOTING_CHECKS = [
    (v.one_of("status", {"a"}), {"status": SENTINEL}),
    (v.amount_minor("amount"), {"amount": SENTINEL}),
    (v.decimal_amount("amount"), {"amount": SENTINEL}),
    (v.currency("currency"), {"currency": SENTINEL}),
    (v.iso_date("born"), {"born": SENTINEL}),
    (v.iso_timestamp("at"), {"at": SENTINEL}),
    (v.epoch_plausible("at"), {"at": SENTINEL}),
    (v.signed_amount_minor("amount"), {"amount": SENTINEL}),
    (v.decimal_text_amount("amount"), {"amount": SENTINEL}),
    (v.age("age"), {"age": SENTINEL}),
    (v.boolean("flag"), {"flag": SENTINEL}),
    (v.non_negative_int("clicks"), {"clicks": SENTINEL}),
    (v.each("rewards", v.iso_date("date")), {"rewards": [{"date": SENTINEL}]}),
    (spec_for("moodle", "users").check, {"id": 1, "firstname": "A", "email": "a@example.org",
                                         "customfields": [{"shortname": "dateofbirth", "value": SENTINEL}]}),
    (spec_for("moodle", "users").check, {"id": 1, "firstname": "A", "email": "a@example.org",
                                         "customfields": [{"shortname": "parentalconsent", "value": SENTINEL}]}),
    (spec_for("surveymonkey", "contacts").check, {"id": "1", "list_status": "active",
                                                  "consent_field": {"id": "4", "label": "Consent"},
                                                  "custom_fields": {"4": SENTINEL}}),
    (spec_for("surveymonkey", "responses").check, {"id": "1", "survey_id": "2", "response_status": "completed",
                                                   "date_created": SENTINEL, "date_modified": SENTINEL}),
]  # fmt: skip


@pytest.mark.parametrize(("check", "record"), QUOTING_CHECKS)
def test_a_refused_value_is_kept_beside_the_reason_never_in_it(check: v.Check, record: dict) -> None:
    reason, value = v.split(check(record))
    assert reason is not None
    assert SENTINEL not in reason
    assert value is not None and SENTINEL in value


def test_no_stream_check_formats_a_refused_value_into_its_reason() -> None:
    # Every source's checks: a reason built by formatting the record's value ({value!r}, {value}) would reach
    # staff roles; v.rejected(reason, value) keeps it beside. Catches a new source that forgets.
    import re
    from pathlib import Path

    sources = Path(v.__file__).resolve().parent
    quoting = re.compile(r"""return f["'][^"']*\{(value|record|raw)[^}]*\}""")
    offenders = [f"{path.relative_to(sources)}:{number}" for path in sorted(sources.glob("**/*.py"))
                 for number, line in enumerate(path.read_text().splitlines(), 1) if quoting.search(line)]  # fmt: skip
    assert offenders == []


class _Records:
    """A stream that serves the records given (the engine reads pages and the primary key)."""

    source, name, primary_key, cursor_field = "moodle", "users", "id", "timemodified"

    def __init__(self, records: list[dict]) -> None:
        self.records = records

    def read(self, since: datetime | None, until: datetime | None) -> Iterator[list[dict]]:
        yield self.records

    def count(self, since: datetime, until: datetime) -> int:
        return len(self.records)


def _sync_impossible_birth_date(url: str) -> None:
    learner = {"id": 501, "username": "l501", "firstname": "Lea", "lastname": "Moss", "email": "lea@example.org",
               "timemodified": 1_700_000_000,
               "customfields": [{"shortname": "dateofbirth", "value": IMPOSSIBLE_BIRTH_DATE}]}  # fmt: skip
    sync_stream(url, _Records([learner]), spec_for("moodle", "users"), actor=Actor("pytest"), run_id="r-reasons",
                interval_end=datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip


def test_staff_read_why_a_record_waits_but_not_the_value_refused(warehouse_url: str, logins) -> None:
    _sync_impossible_birth_date(warehouse_url)
    with psycopg.connect(warehouse_url) as conn:
        reason, value = conn.execute(
            "SELECT reason, reason_value FROM ops.quarantine WHERE source = 'moodle' AND source_record_id = '501'"
        ).fetchone()
    assert reason == "impossible date in dateofbirth"
    assert IMPOSSIBLE_BIRTH_DATE in value
    for role in ("cdp_viewer", "cdp_editor", "cdp_finance"):
        with psycopg.connect(logins(role), autocommit=True) as conn:
            reasons = [row[0] for row in conn.execute("SELECT reason FROM ops.quarantine").fetchall()]
            assert reasons == ["impossible date in dateofbirth"], role
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT reason_value FROM ops.quarantine")
    with psycopg.connect(logins("cdp_admin"), autocommit=True) as conn:
        assert IMPOSSIBLE_BIRTH_DATE in conn.execute("SELECT reason_value FROM ops.quarantine").fetchone()[0]


def test_a_record_still_refused_is_not_queued_twice(warehouse_url: str) -> None:
    _sync_impossible_birth_date(warehouse_url)
    _sync_impossible_birth_date(warehouse_url)
    with psycopg.connect(warehouse_url) as conn:
        assert (
            conn.execute("SELECT count(*) FROM ops.quarantine WHERE resolved_at IS NULL").fetchone()[0] == 1
        )


# Reasons as revisions before 0020 wrote them -> (reason, reason_value) after it.
FORMER_REASONS = {
    ("moodle", "users", "impossible date in value: '1871-02-30'"): ("impossible date in dateofbirth", "'1871-02-30'"),
    ("moodle", "users", "unknown value 'maybe' in parentalconsent"): ("unknown value in parentalconsent", "'maybe'"),
    ("zigpoll", "participants", "wrong type for age in age: 'old'"): ("wrong type for age in age", "'old'"),
    ("referralhero", "subscribers", "rewards: impossible date in date: '2031-02-30'"):
        ("rewards: impossible date in date", "'2031-02-30'"),
    ("moodle", "enrollments", "unknown learner: moodle user 42 is not in the warehouse"):
        ("unknown learner: the moodle user in userid is not in the warehouse", "42"),
    ("moodle", "course_completions", "unknown course: moodle course 7 is not in the warehouse"):
        ("unknown course: the moodle course in course is not in the warehouse", "7"),
    ("typeform", "responses", "unknown learner: moodle user 9 is not in the warehouse"):
        ("unknown learner: the moodle user in hidden.learner_id is not in the warehouse", "9"),
    ("stripe", "balance_transactions", "unknown charge: stripe charge ch_1 is not in the warehouse yet"):
        ("unknown charge: the stripe charge in source is not in the warehouse yet", "ch_1"),
    ("stripe", "refunds", "refund currency EUR differs from its charge's USD"):
        ("refund currency differs from its charge's", "EUR USD"),
    ("salesforce", "soft_credit", "unknown contact: salesforce contact 003x is not in the warehouse"):
        ("unknown contact: the salesforce contact in npsp__Contact__c is not in the warehouse", "003x"),
    ("legacy", "lms_enrollments", "learner L-17 was not loaded (its LMS row waits in ops.legacy_review)"):
        ("learner in learner_id was not loaded (its LMS row waits in ops.legacy_review)", "L-17"),
    ("moodle", "users", "missing required field email"): ("missing required field email", None),
    ("legacy", "referrals", "missing_required: referrer_email"): ("missing_required: referrer_email", None),
    ("galaxy", "hours", "impossible dates: shift_end not after shift_start"):
        ("impossible dates: shift_end not after shift_start", None),
}  # fmt: skip


def test_revision_0020_moves_the_values_former_reasons_quoted(empty_database_url: str) -> None:
    migrations.upgrade(empty_database_url, "0019_process_roles")
    with psycopg.connect(empty_database_url) as conn:
        for number, (source, stream, reason) in enumerate(FORMER_REASONS):
            conn.execute(
                "INSERT INTO ops.quarantine (source, stream, source_record_id, run_id, reason, payload)"
                " VALUES (%s, %s, %s, 'r0', %s, %s::jsonb)",
                (source, stream, str(number), reason, json.dumps({"n": number})),
            )
    migrations.upgrade(empty_database_url)
    with psycopg.connect(empty_database_url) as conn:
        rows = conn.execute(
            "SELECT source, stream, source_record_id::int, reason, reason_value FROM ops.quarantine"
        ).fetchall()
    keys = list(FORMER_REASONS)
    assert {keys[number]: (reason, value) for _, _, number, reason, value in rows} == FORMER_REASONS
