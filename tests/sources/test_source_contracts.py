"""Contract tests of every connector against the sandbox: paging, windows, counts, errors, faults."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from cdp.sources.base import AuthError, ContractError, SourceSettings, Stream, TransientError, parse_timestamp
from cdp.sources.registry import STREAMS, stream
from cdp_sandbox.faults import Fault
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer

INCREMENTAL = [
    ("moodle", "users"),
    ("moodle", "enrollments"),
    ("moodle", "course_completions"),
    ("moodle", "certificate_requests"),
    ("salesforce", "Contact"),
    ("salesforce", "Account"),
    ("salesforce", "Opportunity"),
    ("salesforce", "npsp__Partial_Soft_Credit__c"),
    ("salesforce", "OpportunityContactRole"),
    ("stripe", "charges"),
    ("stripe", "refunds"),
    ("stripe", "balance_transactions"),
    ("typeform", "responses"),
    ("zigpoll", "responses"),
    ("zigpoll", "participants"),
    ("referralhero", "subscribers"),
    ("ledger", "postings"),
    ("zendesk", "tickets"),
]
HTTP_SOURCES = ["moodle", "salesforce", "stripe", "typeform", "zigpoll", "referralhero", "zendesk"]
START = datetime(2023, 1, 1, tzinfo=UTC)  # the world fixture spans 2023
END = datetime(2024, 1, 1, tzinfo=UTC)
ONE_STREAM = {
    "moodle": "users",
    "salesforce": "Contact",
    "stripe": "charges",
    "typeform": "responses",
    "zigpoll": "responses",
    "referralhero": "subscribers",
    "zendesk": "tickets",
}
# A field each stream declares as required, and what an unannounced API change renames it to.
RENAMES = {
    "moodle": ("email", "mail"),
    "salesforce": ("Email", "EmailAddress"),
    "stripe": ("amount", "amount_cents"),
    "typeform": ("submitted_at", "submittedAt"),
    "zigpoll": ("participantId", "participant_id"),
    "referralhero": ("last_updated_at", "updated_at"),
    "zendesk": ("requester_id", "requester_user_id"),
}

WINDOW = (datetime(2023, 3, 1, tzinfo=START.tzinfo), datetime(2023, 9, 1, tzinfo=START.tzinfo))


def read_all(s: Stream, since: datetime | None, until: datetime | None) -> tuple[list[dict], int]:
    pages = list(s.read(since, until))
    assert all(isinstance(page, list) and page for page in pages), "pages must be non-empty lists"
    return [record for page in pages for record in page], len(pages)


def truth_ids(world: World, source: str, name: str, since: datetime | None, until: datetime | None) -> set:
    table = world.table(source, name)
    return {
        table.id_of(int(i))
        for i in table.window(
            None if since is None else int(since.timestamp()),
            None if until is None else int(until.timestamp()),
        )
    }


def test_registry_lists_every_source_with_the_stream_interface(sandbox: SandboxServer) -> None:
    assert set(STREAMS) == {
        "moodle",
        "salesforce",
        "stripe",
        "ledger",
        "zigpoll",
        "typeform",
        "surveymonkey",
        "referralhero",
        "galaxy",
        "zendesk",
    }
    for source, factory in STREAMS.items():
        for s in factory(sandbox.settings(source)):
            assert isinstance(s, Stream)
            assert s.source == source and s.name and s.primary_key


@pytest.mark.parametrize(("source", "name"), INCREMENTAL)
def test_window_read_pages_to_the_end_and_matches_truth(
    world: World, settings_for: Callable[..., SourceSettings], source: str, name: str
) -> None:
    s = stream(source, name, settings_for(source))
    records, pages = read_all(s, *WINDOW)
    expected = truth_ids(world, source, name, *WINDOW)
    got = [r[s.primary_key] for r in records]
    assert len(got) == len(set(got)), "no record may be served twice within one read"
    assert set(got) == expected
    if len(expected) > 600:
        assert pages > 1, "small page sizes must force several pages"
    assert s.count(*WINDOW) == world.truth.expected_count(source, name, *WINDOW) == len(expected)


@pytest.mark.parametrize(("source", "name"), INCREMENTAL)
def test_record_at_since_boundary_is_included_and_at_until_excluded(
    world: World, settings_for: Callable[..., SourceSettings], source: str, name: str
) -> None:
    s = stream(source, name, settings_for(source))
    table = world.table(source, name)
    row = int(table.window(int(WINDOW[0].timestamp()), None)[len(table) // 10])
    moment = datetime.fromtimestamp(int(table.times()[row]), WINDOW[0].tzinfo)
    record_id = table.id_of(row)
    step = timedelta(days=1) if source == "ledger" else timedelta(seconds=1)
    at_since, _ = read_all(s, moment, moment + step)
    assert record_id in {r[s.primary_key] for r in at_since}
    before, _ = read_all(s, moment - step * 30, moment)
    assert record_id not in {r[s.primary_key] for r in before}


@pytest.mark.parametrize("source", HTTP_SOURCES)
def test_wrong_credential_raises_auth_error(sandbox: SandboxServer, source: str) -> None:
    good = sandbox.settings(source)
    bad = SourceSettings(good.base_url, "not-the-token", good.extra)
    with pytest.raises(AuthError):
        next(iter(stream(source, ONE_STREAM[source], bad).read(START, END)))


@pytest.mark.parametrize("source", HTTP_SOURCES)
def test_auth_failure_fault_gives_the_vendor_auth_error(
    sandbox: SandboxServer, settings_for: Callable[..., SourceSettings], source: str
) -> None:
    sandbox.faults.add(Fault("auth_failure", source))
    with pytest.raises(AuthError):
        next(iter(stream(source, ONE_STREAM[source], settings_for(source)).read(START, END)))


@pytest.mark.parametrize("source", HTTP_SOURCES)
def test_429_with_retry_after_is_honoured_and_retried(
    world: World, sandbox: SandboxServer, settings_for: Callable[..., SourceSettings], sleeps, source: str
) -> None:
    name = ONE_STREAM[source]
    fault = sandbox.faults.add(Fault("rate_limit", source, name, times=2, retry_after=3))
    records, _ = read_all(stream(source, name, settings_for(source)), *WINDOW)
    assert fault.hits == 2
    assert len(records) == world.truth.expected_count(source, name, *WINDOW)
    assert len(sleeps.calls) == 2 and all(seconds >= 3 for seconds in sleeps.calls)


@pytest.mark.parametrize("source", HTTP_SOURCES)
def test_500_is_retried_then_succeeds(
    world: World, sandbox: SandboxServer, settings_for: Callable[..., SourceSettings], sleeps, source: str
) -> None:
    name = ONE_STREAM[source]
    sandbox.faults.add(Fault("server_error", source, name, times=2))
    records, _ = read_all(stream(source, name, settings_for(source)), *WINDOW)
    assert len(records) == world.truth.expected_count(source, name, *WINDOW)
    assert len(sleeps.calls) == 2
    assert sleeps.calls[1] > sleeps.calls[0] * 1.2, "backoff must grow"


@pytest.mark.parametrize("source", HTTP_SOURCES)
def test_persistent_500_gives_up_with_a_transient_error(
    sandbox: SandboxServer, settings_for: Callable[..., SourceSettings], sleeps, source: str
) -> None:
    fault = sandbox.faults.add(Fault("server_error", source))
    with pytest.raises(TransientError, match="after 4 attempts"):
        next(iter(stream(source, ONE_STREAM[source], settings_for(source)).read(*WINDOW)))
    assert fault.hits == 4 and len(sleeps.calls) == 3


def test_timeout_is_retried(
    world: World, sandbox: SandboxServer, settings_for: Callable[..., SourceSettings], sleeps
) -> None:
    # A timeout well above a normal page's answer time: at 0.3 s a page of a busy machine also timed out,
    # and the extra retry counted as a second sleep.
    sandbox.faults.add(Fault("slow", "stripe", "refunds", times=1, delay=3.0))
    records, _ = read_all(stream("stripe", "refunds", settings_for("stripe", timeout=1.0)), *WINDOW)
    assert len(records) == world.truth.expected_count("stripe", "refunds", *WINDOW)
    assert len(sleeps.calls) == 1


@pytest.mark.parametrize("source", HTTP_SOURCES)
def test_renamed_field_is_a_contract_error(
    sandbox: SandboxServer, settings_for: Callable[..., SourceSettings], source: str
) -> None:
    old, new = RENAMES[source]
    sandbox.faults.add(Fault("rename_field", source, ONE_STREAM[source], field=old, renamed_to=new))
    with pytest.raises(ContractError, match=old):
        for _ in stream(source, ONE_STREAM[source], settings_for(source)).read(START, END):
            pass


def test_renamed_ledger_column_is_a_contract_error(tmp_path, world: World) -> None:
    path = world.write_ledger_drop(tmp_path, "2023-05")
    path.write_text(path.read_text().replace("posting_date", "booking_date", 1))
    s = stream("ledger", "postings", SourceSettings(tmp_path.as_uri(), ""))
    with pytest.raises(ContractError, match="posting_date"):
        list(s.read(START, END))


def test_dropped_page_is_missed_by_the_read_but_not_by_the_count(
    world: World, sandbox: SandboxServer, settings_for: Callable[..., SourceSettings]
) -> None:
    sandbox.faults.add(Fault("drop_page", "moodle", "enrollments", times=1))
    s = stream("moodle", "enrollments", settings_for("moodle"))
    records, _ = read_all(s, START, END)
    truth = world.truth.expected_count("moodle", "enrollments", START, END)
    assert len(records) == truth - 250
    assert s.count(START, END) == truth


def test_edits_during_a_sync_never_hide_records_that_stay_in_the_window(
    settings_for: Callable[..., SourceSettings], tmp_path
) -> None:
    edited_world = World(seed=5, learners=800, start=START, end=END)
    with SandboxServer(edited_world) as server:
        for source, name in (("moodle", "users"), ("salesforce", "Contact")):
            fault = server.faults.add(Fault("edit_during_sync", source, name, count=3, times=2))
            settings = server.settings(source, page_size=100, batch_size=200)
            s = stream(source, name, settings)
            got = {r[s.primary_key] for page in s.read(START, END) for r in page}
            assert len(fault.affected_ids) == 6
            still_in_window = truth_ids(edited_world, source, name, START, END)
            assert still_in_window <= got, "every record still in the window must be read"
            moved = set(fault.affected_ids)
            assert not moved & still_in_window
            later = {r[s.primary_key] for page in s.read(END, END + timedelta(days=1)) for r in page}
            assert moved <= later, "edited records are picked up by the next window"


def test_drop_1500_records_in_one_night_is_seen_by_count_and_known_to_truth(tmp_path) -> None:
    night = (datetime(2023, 6, 2, tzinfo=UTC), datetime(2023, 6, 3, tzinfo=UTC))
    busy = World(
        seed=9,
        learners=3000,
        enrollments=20_000,
        start=datetime(2023, 6, 1, tzinfo=UTC),
        end=datetime(2023, 6, 5, tzinfo=UTC),
    )
    truth_before = busy.truth.expected_count("moodle", "enrollments", *night)
    assert truth_before > 1500
    with SandboxServer(busy) as server:
        fault = server.faults.add(
            Fault("drop_records", "moodle", "enrollments", count=1500, since=night[0], until=night[1])
        )
        s = stream("moodle", "enrollments", server.settings("moodle"))
        got = {r["id"] for page in s.read(*night) for r in page}
        assert len(fault.affected_ids) == 1500
        assert len(got) == truth_before - 1500
        assert not got & set(fault.affected_ids)
        assert got | set(fault.affected_ids) == truth_ids(busy, "moodle", "enrollments", *night)
        assert s.count(*night) == truth_before == busy.truth.expected_count("moodle", "enrollments", *night)


def test_records_are_yielded_as_received(world: World, settings_for: Callable[..., SourceSettings]) -> None:
    s = stream("stripe", "charges", settings_for("stripe"))
    first_page = next(iter(s.read(*WINDOW)))
    table = world.table("stripe", "charges")
    for record in first_page[:5]:
        assert record == table.record(table.index_of(record["id"]))
    assert all(parse_timestamp(r["created"]) >= WINDOW[0] for r in first_page)
