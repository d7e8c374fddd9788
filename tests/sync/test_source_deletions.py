"""Records deleted at the source reach core as audited soft deletes (revision 0024): ReferralHero subscribers
removed from the campaign (missing from a complete listing), Zendesk tickets exported with status
"deleted", Galaxy hour records marked inactive. Nothing is removed from core; the audit trail records each."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from cdp.quality.count_diff import check_stream
from cdp.sources import registry
from cdp.sync.engine import sync_stream
from cdp.sync.specs import spec_for
from cdp.warehouse import Actor
from cdp_sandbox.faults import Fault
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer

SyncFn = Callable[..., Any]


def _deleted(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        return dict(
            conn.execute(
                "SELECT source_record_id, deleted_at FROM core.referral WHERE source = 'referralhero'"
            ).fetchall()
        )


def _audited_deletions(url: str) -> set[str]:
    """Referral ids whose deleted_at an audited UPDATE set (after image)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT row ->> 'source_record_id' FROM audit.audit_events e,"
            " jsonb_array_elements(e.after) AS row"
            " WHERE e.entity_type = 'core.referral' AND e.action = 'update' AND row ->> 'deleted_at' IS NOT NULL"
        ).fetchall()
    return {r[0] for r in rows}


def test_subscribers_removed_from_the_campaign_become_audited_soft_deletes_and_come_back(
    warehouse_url: str, survey_world: World, survey_sandbox: SandboxServer, sync: SyncFn
) -> None:
    end = datetime.now(UTC)
    sync("referralhero.subscribers", end)
    before = _deleted(warehouse_url)
    assert before and not any(before.values())

    removal = survey_sandbox.faults.add(
        Fault(
            "drop_records",
            "referralhero",
            "subscribers",
            count=4,
            since=survey_world.start,
            until=survey_world.end,
        )
    )
    survey_sandbox.apis.listing("referralhero", "subscribers")  # picks the subscribers the fault removes
    removed = {str(record_id) for record_id in removal.affected_ids} & set(before)
    assert removed, "some of the removed subscribers had reached core"
    sync("referralhero.subscribers", end, run="run-2")

    after = _deleted(warehouse_url)
    assert set(after) == set(before), "a removed subscriber stays in core"
    assert {rid for rid, deleted in after.items() if deleted} == removed
    assert _audited_deletions(warehouse_url) == removed, "each soft delete is an audited update"

    # The count diff counts them apart: the source no longer lists them, and that is not a loss.
    spec = spec_for("referralhero", "subscribers")
    stream = registry.stream("referralhero", "subscribers", survey_sandbox.settings("referralhero"))
    diff = check_stream(
        warehouse_url,
        spec,
        stream,
        run_id="count-1",
        window_start=datetime(2000, 1, 1, tzinfo=UTC),
        window_end=end,
        actor=Actor("pytest"),
    )
    assert diff.deleted_count == len(removed)
    assert (diff.never_fetched, diff.dropped) == (0, 0)
    assert diff.source_count == diff.core_count + diff.quarantined_count

    survey_sandbox.faults.remove(removal.id)
    sync("referralhero.subscribers", end, run="run-3")
    assert not any(_deleted(warehouse_url).values()), "listed again: no longer deleted"


def test_a_listing_that_lost_a_page_marks_nobody_removed(
    warehouse_url: str, survey_sandbox: SandboxServer, sync: SyncFn
) -> None:
    end = datetime.now(UTC)
    sync("referralhero.subscribers", end)
    survey_sandbox.faults.add(Fault("drop_page", "referralhero", "subscribers", times=1))
    sync("referralhero.subscribers", end, run="run-2")
    assert not any(_deleted(warehouse_url).values())


def _survey_deleted(url: str, source: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        return dict(
            conn.execute(
                "SELECT source_record_id, deleted_at FROM core.survey_response WHERE source = %s", (source,)
            ).fetchall()
        )


def _audited_survey_deletions(url: str, source: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT row ->> 'source_record_id' FROM audit.audit_events e, jsonb_array_elements(e.after) AS row"
            " WHERE e.entity_type = 'core.survey_response' AND e.action = 'update'"
            " AND row ->> 'source' = %s AND row ->> 'deleted_at' IS NOT NULL",
            (source,),
        ).fetchall()
    return {r[0] for r in rows}


@pytest.mark.parametrize("source", ["typeform", "surveymonkey"])
def test_responses_deleted_in_the_survey_tool_become_audited_soft_deletes_counted_apart(
    warehouse_url: str, survey_world: World, survey_sandbox: SandboxServer, sync: SyncFn, source: str
) -> None:
    # Neither tool reports a deletion; each run lists every response id of the survey, and a response core
    # holds that is no longer listed is marked deleted (sql/sync/_survey_responses_removed.sql).
    end = datetime.now(UTC)
    sync("moodle.users", end)
    sync(f"{source}.responses", end)
    before = _survey_deleted(warehouse_url, source)
    assert before and not any(before.values())

    deletion = survey_sandbox.faults.add(
        Fault(
            "delete_records",
            source,
            "responses",
            count=3,
            since=survey_world.start,
            until=survey_world.end,
        )
    )
    survey_sandbox.apis.listing(source, "responses")  # picks the responses the owner deletes
    deleted = {str(record_id) for record_id in deletion.affected_ids}
    assert len(deleted) == 3 and deleted <= set(before), "the deleted responses had reached core"
    sync(f"{source}.responses", end, run="run-2")

    after = _survey_deleted(warehouse_url, source)
    assert set(after) == set(before), "a deleted response stays in core"
    assert {rid for rid, at in after.items() if at} == deleted
    assert _audited_survey_deletions(warehouse_url, source) == deleted, "each soft delete is audited"

    # The tool's count no longer reports them; the count diff holds them apart, not as a loss.
    spec = spec_for(source, "responses")
    stream = registry.stream(source, "responses", survey_sandbox.settings(source))
    diff = check_stream(
        warehouse_url, spec, stream, run_id=f"count-{source}", window_start=datetime(2000, 1, 1, tzinfo=UTC),
        window_end=end, actor=Actor("pytest"),
    )  # fmt: skip
    assert diff.deleted_count == len(deleted)
    assert diff.source_count == diff.core_count + diff.quarantined_count
    assert (diff.never_fetched, diff.dropped) == (0, 0)

    survey_sandbox.faults.remove(deletion.id)
    sync(f"{source}.responses", end, run="run-3")
    assert not any(_survey_deleted(warehouse_url, source).values()), "listed again: no longer deleted"


def test_a_typeform_listing_that_lost_a_page_marks_no_response_deleted(
    warehouse_url: str, survey_sandbox: SandboxServer, sync: SyncFn
) -> None:
    end = datetime.now(UTC)
    sync("moodle.users", end)
    sync("typeform.responses", end)
    settings = survey_sandbox.settings("typeform")
    settings = dataclasses.replace(settings, extra={**settings.extra, "page_size": 25})
    stream = registry.stream("typeform", "responses", settings)
    lost = survey_sandbox.faults.add(Fault("drop_page", "typeform", "responses"))
    sync_stream(
        warehouse_url, stream, spec_for("typeform", "responses"), actor=Actor("pytest"), run_id="run-2",
        interval_end=end,
    )  # fmt: skip
    assert lost.hits > 0, "the listing did lose pages"
    assert stream.listed_ids is None, "a listing shorter than Typeform's total_items is no listing"
    assert not any(_survey_deleted(warehouse_url, "typeform").values())
