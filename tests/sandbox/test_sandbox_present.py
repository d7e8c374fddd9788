"""A world dated from a reference day: its past holds yesterday, last month and the 90 days a newcomer's first
day looks at; live, its future appears as the clock reaches it; the planted faults fall in that recent past;
and the registration form sends its submissions, signed, as they happen."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import orjson
import pytest

from cdp.webhooks import formats, signatures
from cdp_sandbox import faults, registration
from cdp_sandbox.apis import Request
from cdp_sandbox.formats import DAY, to_epoch
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer, add_arguments, reference_day

TODAY = date(2026, 12, 7)
PRESENT = to_epoch(TODAY)
YESTERDAY = (PRESENT - DAY, PRESENT)
NOVEMBER = (to_epoch(date(2026, 11, 1)), to_epoch(date(2026, 12, 1)))
#: Streams a newcomer's dashboards show on the first day.
BUSY = (("moodle", "users"), ("moodle", "enrollments"), ("stripe", "charges"), ("salesforce", "Opportunity"))


@pytest.fixture(scope="module")
def present() -> World:
    return World(seed=7, learners=600, today=TODAY)


class Clock:
    def __init__(self, at: int) -> None:
        self.at = at

    def __call__(self) -> float:
        return float(self.at)


def test_the_past_is_the_90_days_before_the_reference_day_and_nothing_after_it_is_served(
    present: World,
) -> None:
    start = PRESENT - 90 * DAY
    for (source, stream), table in present.tables.items():
        served = table.window(None, None)
        if (source, stream) in {
            ("moodle", "courses"), ("salesforce", "Account"), ("salesforce", "npsp__General_Accounting_Unit__c")
        }:  # fmt: skip
            continue  # courses, partner organisations and funds were set up before the first learner came
        assert served.shape[0] > 0, f"{source}.{stream} serves nothing"
        assert table.created[served].min() >= start, f"{source}.{stream} has a record before the 90 days"
        assert table.times()[served].max() < PRESENT, f"{source}.{stream} serves a record from the future"
        assert present.truth.expected_count(source, stream, PRESENT, None) == 0
    assert present.truth.expected_counts()["moodle.users"] < len(present.table("moodle", "users"))


def test_yesterday_last_month_and_every_recent_week_have_data(present: World) -> None:
    for source, stream in BUSY:
        assert present.truth.expected_count(source, stream, *YESTERDAY) > 0, (
            f"{source}.{stream}: no yesterday"
        )
        assert present.truth.expected_count(source, stream, *NOVEMBER) > 0, f"{source}.{stream}: no November"
        for week in range(12):  # the data-health trends: every week of the window has records
            until = PRESENT - week * 7 * DAY
            assert present.truth.expected_count(source, stream, until - 7 * DAY, until) > 0, (
                source,
                stream,
                week,
            )
    assert present.ledger_months() == ["2026-09", "2026-10", "2026-11", "2026-12"]


def test_last_months_reconciliation_has_the_silent_donation_loss_to_find(present: World, tmp_path) -> None:
    """Gifts that reached Stripe but not the CRM or the ledger, in the previous calendar month."""
    lost = present.truth.ledger.discrepancies_in("2026-11")
    assert lost["missing_in_crm"] and lost["missing_in_ledger"], lost
    drop = present.write_ledger_drop(tmp_path, "2026-11").read_text()
    assert drop.count("\n") > 100
    assert not lost["missing_in_ledger"] & {line.split(",")[0] for line in drop.splitlines()}
    # The export is taken at a day's close: this month's drop stops at yesterday.
    december = present.write_ledger_drop(tmp_path, "2026-12").read_text().splitlines()[1:]
    assert december and max(line.split(",")[1] for line in december) == "2026-12-06"


def test_the_same_seed_and_day_give_the_same_world_and_another_day_moves_it() -> None:
    one, two = World(seed=5, learners=200, today=TODAY), World(seed=5, learners=200, today=TODAY)
    later = World(seed=5, learners=200, today=TODAY + timedelta(days=1))
    for key in one.tables:
        assert list(one.truth.person_map(*key)) == list(two.truth.person_map(*key))
        assert [orjson.dumps(r) for r in one.records(*key)] == [orjson.dumps(r) for r in two.records(*key)]
    assert later.present_ts - one.present_ts == DAY
    # The same draws, a day later: every record's time moves by one day.
    shifted = later.table("stripe", "charges").created - one.table("stripe", "charges").created
    assert set(np.unique(shifted).tolist()) == {DAY}


def test_a_live_world_reveals_its_future_as_the_clock_runs_and_the_past_stays_as_it_was(
    present: World,
) -> None:
    clock = Clock(PRESENT + 60)
    live = World(seed=7, learners=600, today=TODAY, live=True, clock=clock)
    for key in present.tables:  # the past is the frozen world's, byte for byte
        frozen_rows = [orjson.dumps(r) for r in present.records(*key, None, PRESENT)]
        assert [orjson.dumps(r) for r in live.records(*key, None, PRESENT)] == frozen_rows, key
    before = {key: live.truth.expected_count(*key) for key in BUSY}
    clock.at = PRESENT + 12 * 3600
    after = {key: live.truth.expected_count(*key) for key in BUSY}
    for key in BUSY:
        new = live.truth.expected_count(*key, PRESENT + 60, clock.at + 1)
        assert new > 0, f"{key}: nothing new in twelve hours"
        assert (
            after[key] - before[key] == new
        )  # an incremental sync from the last watermark finds exactly them
        served = list(live.records(*key, PRESENT, None))
        assert served and all(_time(r) <= clock.at for r in served)
    # What the server answers moves with the clock: Stripe's newest charges are today's.
    with SandboxServer(live) as sandbox:
        newest = sandbox.route(
            Request(
                "GET",
                "/stripe/v1/charges",
                {"limit": ["3"]},
                {"authorization": f"Bearer {live.credentials.stripe}"},
            )
        )
        charges = orjson.loads(newest.encoded())["data"]
        assert charges and all(PRESENT <= c["created"] <= clock.at for c in charges)
        health = orjson.loads(sandbox.route(Request("GET", "/_sandbox/health", {}, {})).encoded())
        assert health["today"] == "2026-12-07" and health["live"] is True
        assert health["served_until"] == "2026-12-07T12:00:01Z"
    again = World(seed=7, learners=600, today=TODAY, live=True, clock=Clock(clock.at))
    for key in BUSY:  # the same seed, day and moment: the same new records
        assert [orjson.dumps(r) for r in again.records(*key)] == [orjson.dumps(r) for r in live.records(*key)]


def _time(record: dict) -> int:
    for name in ("created", "timemodified", "timecreated"):
        if isinstance(record.get(name), int):
            return record[name]
    stamp = record.get("SystemModstamp") or record.get("LastModifiedDate")
    return to_epoch(datetime.fromisoformat(stamp.replace("Z", "+00:00").replace("+0000", "+00:00")))


def test_planted_faults_drop_last_nights_enrolments_from_listings_while_counts_report_them(
    present: World,
) -> None:
    planted = faults.planted(present)
    assert [(f.kind, f.source, f.stream, f.since, f.until) for f in planted] == [
        ("drop_records", "moodle", "enrollments", *YESTERDAY)
    ]
    night = present.truth.expected_count("moodle", "enrollments", *YESTERDAY)
    with SandboxServer(present) as sandbox:
        for fault in planted:
            sandbox.faults.add(fault)
        token = {"wstoken": [present.credentials.moodle], "moodlewsrestformat": ["json"]}
        window = {"timefrom": [str(YESTERDAY[0])], "timeto": [str(YESTERDAY[1])]}

        def call(function: str, **extra: list[str]) -> dict:
            query = {**token, **window, "wsfunction": [function], **extra}
            path = "/moodle/webservice/rest/server.php"
            return orjson.loads(sandbox.route(Request("POST", path, query, {})).encoded())

        counted = call("local_cdp_count_records", entity=["enrolments"])["count"]
        listed = call("local_cdp_get_enrolments", limitnumber=["5000"])
    items = next(value for value in listed.values() if isinstance(value, list) and value)
    assert counted == night
    assert len(items) == night - planted[0].count
    assert planted[0].count == round(night * faults.DROPPED_SHARE)


def test_the_server_is_dated_today_unless_told_otherwise() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert reference_day(parser.parse_args([])) == datetime.now(UTC).date()
    assert reference_day(parser.parse_args(["--today", "2026-12-07"])) == TODAY
    assert reference_day(parser.parse_args(["--fixed-past"])) is None
    with pytest.raises(SystemExit):
        reference_day(parser.parse_args(["--fixed-past", "--live"]))
    with pytest.raises(ValueError, match="reference day"):
        World(seed=1, learners=20, live=True)


# ---------------------------------------------------------------- the registration form's webhooks
class _Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answers: Iterator[int]) -> None:
        self.answers = answers
        self.received: list[tuple[dict[str, str], bytes]] = []
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = next(self.server.answers)
        if status == 200:
            self.server.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


def test_the_live_form_sends_each_new_registration_signed_and_retries_what_was_refused() -> None:
    clock = Clock(PRESENT + 5 * DAY)
    world = World(seed=9, learners=400, today=TODAY, live=True, clock=clock)
    due = world.table("registration", "submissions").count(PRESENT, clock.at + 1)
    assert due > 3
    receiver = _Receiver(iter([503, *([200] * 10_000)]))  # the intake is down for the first delivery
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/cdp-webhooks/registration"
    try:
        with SandboxServer(
            world, registration_webhook_url=url, registration_webhook_interval=0.05
        ) as sandbox:
            sender = sandbox.registration_sender
            assert sender is not None
            deadline = time.monotonic() + 20
            while len(sender.deliveries) < due + 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert (
                len(sender.deliveries) == due + 1
            )  # every submission since midnight, and the refused one again
            assert [status for _, status in sender.deliveries].count(503) == 1
            assert len(receiver.received) == due
    finally:
        receiver.shutdown()
        receiver.server_close()
    delivered = []
    for headers, body in receiver.received:
        assert signatures.verify("registration", registration.CREDENTIAL, headers, body) is not None
        event = formats.parse_body(body)
        assert event["event_type"] == "registration.submitted" and event["form_id"] == registration.FORM_ID
        submitted = to_epoch(datetime.fromisoformat(event["data"]["submitted_at"].replace("Z", "+00:00")))
        assert PRESENT <= submitted <= clock.at
        delivered.append(event["data"]["id"])
    assert len(delivered) == len(set(delivered)) == due
    # Its truth names the person behind every submission, as for the polled streams.
    persons = dict(world.truth.person_map("registration", "submissions"))
    assert all(persons[submission] for submission in delivered)


def test_the_forms_console_lists_and_replays_its_events(present: World) -> None:
    receiver = _Receiver(iter([200] * 10_000))
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/registration"
    try:
        with SandboxServer(present) as sandbox:
            listed = orjson.loads(
                sandbox.route(
                    Request("GET", "/registration/events", {"since": [str(YESTERDAY[0])]}, {})
                ).encoded()
            )
            assert listed["count"] == len(listed["data"]) > 0
            assert all(event["data"]["submitted_at"].startswith("2026-12-06") for event in listed["data"])
            body = json.dumps({"url": url, "since": YESTERDAY[0], "until": YESTERDAY[1]}).encode()
            replay = orjson.loads(
                sandbox.route(Request("POST", "/registration/deliver", {}, {}, body)).encoded()
            )
            assert replay == {"sent": listed["count"], "statuses": {"200": listed["count"]}}
            refused = sandbox.route(Request("POST", "/registration/deliver", {}, {}, b"{}"))
            assert refused.status == 400
    finally:
        receiver.shutdown()
        receiver.server_close()
    assert [orjson.loads(body)["data"]["id"] for _, body in receiver.received] == [
        event["data"]["id"] for event in listed["data"]
    ]
