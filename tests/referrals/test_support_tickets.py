"""Zendesk tickets in the warehouse: the referral support-ticket KPI against the generator's truth, the
quarantine, requesters joined by exact keys only (never a new person), referrals linked when they arrive."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime

import psycopg
import pytest
from psycopg.rows import dict_row

from cdp.referrals.kpis import read_kpis
from cdp.sources import registry
from cdp.sync.engine import SyncResult, sync_stream
from cdp.sync.specs import spec_for
from cdp.warehouse import Actor
from cdp_sandbox import zendesk
from cdp_sandbox.formats import person_id
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer

ACTOR = Actor("pytest")
REASONS = {
    "missing_required": "missing required field requester_id",
    "unknown_enum": "status",
    "impossible_date": "impossible date in created_at",
    "malformed_email": "requester.email",
}


def _month(ts: int) -> date:
    moment = datetime.fromtimestamp(ts, UTC)
    return date(moment.year, moment.month, 1)


def _tickets(url: str) -> dict[str, dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return {row["source_record_id"]: row for row in conn.execute("SELECT * FROM core.support_ticket")}


def _count(url: str, query: str, params: tuple = ()) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchone()[0]


def _warehouse_people_of(url: str, world: World) -> dict[str, set[str]]:
    """Truth person ("P0000042") -> the warehouse person ids their Moodle users and ReferralHero subscribers
    were synced to (the sync creates one person per source record it cannot join by exact keys)."""
    with psycopg.connect(url) as conn:
        mapped = {
            (source, record_id): person
            for source, record_id, person in conn.execute(
                "SELECT m.source, m.source_record_id, coalesce(p.merged_into, p.person_id)::text"
                " FROM core.person_source_id m JOIN core.person p USING (person_id)"
            ).fetchall()
        }
    people: dict[str, set[str]] = defaultdict(set)
    for key, source, stream in (("moodle.user", "moodle", "users"), ("referralhero.subscriber", "referralhero",
                                                                     "subscribers")):  # fmt: skip
        for record_id, truth in world.truth.person_map(source, stream):
            if (key, str(record_id)) in mapped and truth:
                people[truth].add(mapped[(key, str(record_id))])
    return people


def test_ticket_kpi_equals_the_share_computed_from_the_generators_truth_month_by_month(
    warehouse_url: str, synced: None, referral_sync: Callable[..., SyncResult], referral_world: World
) -> None:
    referral_sync("zendesk.tickets")
    data = zendesk.of(referral_world)
    table = data.table
    truth: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    for row in range(len(table)):
        if int(table.malformed[row]):
            continue  # quarantined: not in the warehouse
        month = truth[_month(int(table.created[row]))]
        month[0] += data.referral_related(row)
        month[1] += 1

    rows = {
        row["month"]: row for row in read_kpis(warehouse_url, ACTOR)["kpi_referral_support_tickets_monthly"]
    }
    assert set(rows) == set(truth) and len(rows) >= 12
    for month, (numerator, denominator) in truth.items():
        assert (int(rows[month]["numerator"]), int(rows[month]["denominator"])) == (numerator, denominator), (
            month
        )
        assert float(rows[month]["value"]) == pytest.approx(numerator / denominator), month
    # The planted data exercises both sides of the ratio, and both ways a ticket says it is about a referral.
    assert any(0 < float(row["value"]) < 1 for row in rows.values())
    landed = _tickets(warehouse_url).values()
    assert any(t["referral_ref"] and "referral" not in t["tags"] for t in landed)
    assert any("referral" in t["tags"] and not t["referral_ref"] for t in landed)

    # The view follows the data: a ticket that is no longer about a referral leaves the numerator.
    changed = next(t for t in landed if t["about_referral"])
    month = _month(int(changed["opened_at"].timestamp()))
    with psycopg.connect(warehouse_url) as conn:
        conn.execute(
            "UPDATE core.support_ticket SET about_referral = false WHERE support_ticket_id = %s",
            (changed["support_ticket_id"],),
        )
    after = {
        row["month"]: row for row in read_kpis(warehouse_url, ACTOR)["kpi_referral_support_tickets_monthly"]
    }
    assert int(after[month]["numerator"]) == truth[month][0] - 1


def test_every_malformed_ticket_is_quarantined_with_its_reason_and_none_is_lost(
    warehouse_url: str, synced: None, referral_sync: Callable[..., SyncResult], referral_world: World
) -> None:
    result = referral_sync("zendesk.tickets")
    table = referral_world.table("zendesk", "tickets")
    malformed = {str(record_id): reason for record_id, reason in table.malformed_rows().items()}
    assert set(malformed.values()) == set(REASONS)
    assert result.rows_read == len(table) and result.rows_quarantined == len(malformed)
    with psycopg.connect(warehouse_url) as conn:
        quarantined = dict(
            conn.execute(
                "SELECT source_record_id, reason FROM ops.quarantine WHERE source = 'zendesk' AND stream = 'tickets'"
            ).fetchall()
        )
        raw = conn.execute("SELECT count(*) FROM raw.records WHERE source = 'zendesk'").fetchone()[0]
    assert set(quarantined) == set(malformed)
    for record_id, kind in malformed.items():
        assert REASONS[kind] in quarantined[record_id], (record_id, kind, quarantined[record_id])
    landed = _tickets(warehouse_url)
    assert set(landed) == {str(table.id_of(i)) for i in range(len(table))} - set(malformed)
    assert raw == len(table)


def test_requesters_join_by_exact_keys_and_unknown_ones_keep_only_a_hash_of_their_email(
    warehouse_url: str, synced: None, referral_sync: Callable[..., SyncResult], referral_world: World
) -> None:
    data = zendesk.of(referral_world)
    table = data.table
    people_before = _count(warehouse_url, "SELECT count(*) FROM core.person")
    # Break the rule on purpose for one learner: a second person holding the same email and full name
    # makes the key ambiguous, so their tickets must stay without a person.
    learner_rows = [
        row
        for row in range(len(table))
        if data.kind[row] == zendesk.LEARNER and not int(table.malformed[row])
    ]
    ambiguous = int(table.person[learner_rows[0]])
    name = referral_world.name(ambiguous)
    with psycopg.connect(warehouse_url) as conn:
        conn.execute(
            "INSERT INTO core.person (given_name, family_name, email, email_normalized) VALUES (%s, %s, %s, %s)",
            (
                name.given,
                name.family,
                referral_world.email(ambiguous),
                referral_world.email(ambiguous).strip().lower(),
            ),
        )
    referral_sync("zendesk.tickets")

    assert _count(warehouse_url, "SELECT count(*) FROM core.person") == people_before + 1  # no person made
    people = _warehouse_people_of(warehouse_url, referral_world)
    assert people[person_id(ambiguous)], "without the twin, the learner's tickets would have found them"
    landed = _tickets(warehouse_url)
    resolved = unresolved_learners = 0
    for row in range(len(table)):
        ticket = landed.get(str(table.id_of(row)))
        if ticket is None:
            continue
        email = data.requester_email(row).strip().lower()
        assert ticket["requester_email_sha256"] == hashlib.sha256(email.encode()).hexdigest()
        truth = int(table.person[row])
        if truth < 0 or truth == ambiguous or data.kind[row] == zendesk.DONOR:
            # Unknown emails, the ambiguous key, donors who are not in the warehouse: no person.
            assert ticket["person_id"] is None, (row, data.kind[row])
            continue
        if ticket["person_id"] is None:
            unresolved_learners += 1  # e.g. a learner whose Moodle record was quarantined or duplicated
            continue
        assert str(ticket["person_id"]) in people[person_id(truth)], row
        resolved += 1
    assert resolved > 0 and resolved >= 4 * unresolved_learners
    assert any(
        landed.get(str(table.id_of(row)), {}).get("person_id")
        for row in range(len(table))
        if data.requester_email(row) != data.requester_email(row).strip().lower()
    ), "an email typed in capitals with spaces still finds its person"
    # No email in clear anywhere in the ticket table.
    assert (
        _count(
            warehouse_url, "SELECT count(*) FROM core.support_ticket t WHERE to_jsonb(t)::text LIKE '%%@%%'"
        )
        == 0
    )


def test_referrals_are_linked_when_they_arrive_and_a_rerun_changes_nothing(
    warehouse_url: str, referral_sync: Callable[..., SyncResult], referral_world: World
) -> None:
    data = zendesk.of(referral_world)
    referral_sync("moodle.users")
    referral_sync("zendesk.tickets")  # before ReferralHero: the referrals are not there yet
    landed = _tickets(warehouse_url)
    named = {record_id: t["referral_ref"] for record_id, t in landed.items() if t["referral_ref"]}
    assert named and all(landed[record_id]["referral_id"] is None for record_id in named)
    for row in range(len(data.table)):
        ticket = landed.get(str(data.table.id_of(row)))
        if ticket is not None:
            assert ticket["referral_ref"] == data.referral_subscriber(row)
            assert ticket["about_referral"] == data.referral_related(row)

    referral_sync("referralhero.subscribers")
    referral_sync("zendesk.tickets", run="run-2")
    with psycopg.connect(warehouse_url) as conn:
        linked = dict(
            conn.execute(
                "SELECT t.source_record_id, r.source_record_id FROM core.support_ticket t"
                " JOIN core.referral r USING (referral_id)"
            ).fetchall()
        )
        in_core = {row[0] for row in conn.execute("SELECT source_record_id FROM core.referral")}
    assert linked == {record_id: ref for record_id, ref in named.items() if ref in in_core}
    assert len(linked) >= len(named) - len(referral_world.truth.malformed("referralhero", "subscribers"))

    events = "SELECT count(*) FROM audit.audit_events WHERE entity_type = 'core.support_ticket'"
    before = _count(warehouse_url, events)
    referral_sync("zendesk.tickets", run="run-3")
    assert _count(warehouse_url, events) == before


def _ticket_people(url: str) -> dict[str, str]:
    """Each linked ticket -> the Moodle users of its person (person ids differ between databases)."""
    with psycopg.connect(url) as conn:
        return dict(
            conn.execute(
                "SELECT t.source_record_id, string_agg(m.source_record_id, ',' ORDER BY m.source_record_id)"
                " FROM core.support_ticket t JOIN core.person_source_id m"
                " ON m.person_id = t.person_id AND m.source = 'moodle.user' GROUP BY 1"
            ).fetchall()
        )


def test_a_ticket_whose_requester_registers_later_is_linked_by_the_next_run(
    warehouse_url: str,
    another_warehouse: Callable[[], str],
    referral_sandbox: SandboxServer,
    referral_sync: Callable[..., SyncResult],
) -> None:
    referral_sync("zendesk.tickets")  # before any learner is in the warehouse: nobody to link to
    assert _count(warehouse_url, "SELECT count(*) FROM core.support_ticket WHERE person_id IS NOT NULL") == 0
    referral_sync("moodle.users")
    result = referral_sync("zendesk.tickets", run="run-2")
    # The run re-read only its window's tickets (the last 30 minutes), yet the earlier ones are linked now,
    # as they would have been had the learners been there first.
    assert result.rows_read < _count(warehouse_url, "SELECT count(*) FROM core.support_ticket")
    learners_first = another_warehouse()
    for key in ("moodle.users", "zendesk.tickets"):
        spec = spec_for(*key.split("."))
        stream = registry.stream(spec.source, spec.stream, referral_sandbox.settings(spec.source))
        sync_stream(learners_first, stream, spec, actor=ACTOR, run_id="run-1", interval_end=result.window_end)
    linked = _ticket_people(warehouse_url)
    assert linked and linked == _ticket_people(learners_first)

    events = "SELECT count(*) FROM audit.audit_events WHERE entity_type = 'core.support_ticket'"
    before = _count(warehouse_url, events)
    referral_sync("zendesk.tickets", run="run-3")
    assert _count(warehouse_url, events) == before
