"""Records deleted at the source reach core as audited soft deletes (revision 0024): ReferralHero subscribers
removed from the campaign (missing from a complete listing), Zendesk tickets exported with status
"deleted", Galaxy hour records marked inactive. Nothing is removed from core; the audit trail records each."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg

from cdp.quality.count_diff import check_stream
from cdp.sources import registry
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
