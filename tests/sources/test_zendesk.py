"""The Zendesk connector against the sandbox: the cursor export page by page to end_of_stream, each ticket
with its side-loaded requester, basic auth as {email}/token, and the vendor's refusals."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import requests

from cdp.sources.base import AuthError, SourceSettings
from cdp.sources.registry import stream
from cdp_sandbox import zendesk as sandbox_zendesk
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer

START = datetime(2023, 1, 1, tzinfo=UTC)
END = datetime(2024, 1, 1, tzinfo=UTC)


def test_the_export_follows_the_cursor_to_the_end_and_attaches_each_requester(
    world: World, settings_for: Callable[..., SourceSettings]
) -> None:
    tickets = stream("zendesk", "tickets", settings_for("zendesk", page_size=7))
    pages = list(tickets.read(START, END))
    data = sandbox_zendesk.of(world)
    expected = world.truth.expected_count("zendesk", "tickets", START, END)
    assert len(pages) >= expected // 7 and sum(map(len, pages)) == expected
    for record in (record for page in pages for record in page):
        row = data.table.index_of(record["id"])
        assert record["referral_field_id"] == sandbox_zendesk.REFERRAL_FIELD_ID
        if record["requester_id"] is None:
            assert record["requester"] is None  # nothing to side-load: the validator quarantines it
            continue
        assert record["requester"]["id"] == record["requester_id"]
        assert record["requester"]["email"] == data.requester_email(row)


def test_the_sandbox_speaks_zendesk_basic_auth_and_refuses_a_too_recent_start_time(
    sandbox: SandboxServer,
) -> None:
    settings = sandbox.settings("zendesk")
    url = f"{settings.base_url}/api/v2/incremental/tickets/cursor.json"
    token = settings.credential
    good = requests.get(
        url, params={"start_time": 0}, auth=(f"{settings.extra['email']}/token", token), timeout=10
    )
    assert good.status_code == 200 and {"tickets", "after_cursor", "end_of_stream"} <= set(good.json())
    # The token without the "/token" suffix on the user is a password login, which the API token is not.
    assert (
        requests.get(
            url, params={"start_time": 0}, auth=(settings.extra["email"], token), timeout=10
        ).status_code
        == 401
    )
    recent = int((datetime.now(UTC) - timedelta(seconds=10)).timestamp())
    refused = requests.get(
        url, params={"start_time": recent}, auth=(f"{settings.extra['email']}/token", token), timeout=10
    )
    assert refused.status_code == 400 and "Too recent start_time" in refused.json()["description"]


def test_settings_without_the_agent_email_are_refused_before_any_request(sandbox: SandboxServer) -> None:
    settings = sandbox.settings("zendesk")
    with pytest.raises(ValueError, match="extra\\['email'\\]"):
        stream("zendesk", "tickets", SourceSettings(settings.base_url, settings.credential, {}))
    wrong_agent = SourceSettings(settings.base_url, "not-the-token", settings.extra)
    with pytest.raises(AuthError):
        list(stream("zendesk", "tickets", wrong_agent).read(START, END))
