"""ReferralHero subscribers into core.referral and their rewards into core.reward: counts equal the
truth, referred and referrer resolve to the right people by exact keys (a family sharing one email stays
several people), a referrer held in quarantine is linked once it lands, and re-runs change nothing."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from support import snapshot

from cdp_sandbox.generator import World
from cdp_sandbox.tables import REASON_CODE

SyncFn = Callable[..., Any]
SNAPSHOT_TABLES = ("core.referral", "core.reward", "core.person", "core.person_source_id", "ops.quarantine",
                   "raw.records")  # fmt: skip


def _referrals(url: str) -> dict[str, dict[str, Any]]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        rows = conn.execute(
            "SELECT source_record_id, referrer_person_id::text AS referrer, referred_person_id::text AS referred,"
            "       referrer_source_id, referral_code, clicks, people_referred, status, signed_up_at"
            " FROM core.referral WHERE source = 'referralhero'"
        ).fetchall()
    return {row["source_record_id"]: row for row in rows}


def _indistinguishable(world: World) -> set[tuple[str, str]]:
    """(name, email) pairs the generator gave to more than one real person: no exact key can tell them apart."""
    owners: dict[tuple[str, str], set[int]] = defaultdict(set)
    for person in range(world.learners):
        owners[world.name(person).full.lower(), world.email(person).lower()].add(person)
    return {key for key, people in owners.items() if len(people) > 1}


def test_subscribers_land_as_referrals_linked_to_the_right_people(
    warehouse_url: str, survey_world: World, sync: SyncFn, quarantined, truth_people
) -> None:
    world = survey_world
    end = datetime.now(UTC)
    sync("moodle.users", end)
    result = sync("referralhero.subscribers", end)

    subscribers = {s["id"]: s for s in world.records("referralhero", "subscribers")}
    assert result.rows_read == world.truth.expected_count("referralhero", "subscribers") == len(subscribers)
    malformed = world.truth.malformed("referralhero", "subscribers")
    assert malformed
    kept = quarantined("referralhero", "subscribers")
    assert set(kept) == set(malformed)
    for record_id, reason in malformed.items():
        assert reason.split("_")[0] in kept[record_id], (reason, kept[record_id])

    referrals = _referrals(warehouse_url)
    assert set(referrals) == set(subscribers) - set(malformed)
    truth = truth_people()
    twins = _indistinguishable(world)
    linked_to_learner = 0
    truth_of_person: dict[str, set[str]] = defaultdict(set)
    for record_id, row in referrals.items():
        subscriber = subscribers[record_id]
        true_person = world.truth.person_of("referralhero", "subscribers", record_id)
        if (subscriber["name"].lower(), subscriber["email"].lower()) not in twins:
            truth_of_person[row["referred"]].add(true_person)
        if (
            row["referred"] in truth
            and (subscriber["name"].lower(), subscriber["email"].lower()) not in twins
        ):
            linked_to_learner += 1
            assert truth[row["referred"]] == {true_person}, record_id
        assert (row["clicks"], row["people_referred"], row["referral_code"]) == (
            subscriber["unique_clicks"], subscriber["people_referred"], subscriber["code"],
        )  # fmt: skip
        assert row["status"] == "signed_up"
        assert row["signed_up_at"] == datetime.fromtimestamp(subscriber["created_at"], UTC)
        referrer = subscriber["referred_by"]
        if referrer is None:
            assert row["referrer"] is None and row["referrer_source_id"] is None
        else:
            assert row["referrer_source_id"] == referrer["id"]
            assert row["referrer"] == referrals[referrer["id"]]["referred"]
    # No person id holds two different real people (exact keys only; a family's shared email does not
    # merge), except for the generator's namesakes with the same address, whom no exact key can separate.
    assert all(len(people) == 1 for people in truth_of_person.values())
    assert linked_to_learner > 0.6 * len(referrals)


def test_a_family_sharing_one_email_stays_several_people(
    warehouse_url: str, survey_world: World, sync: SyncFn
) -> None:
    end = datetime.now(UTC)
    sync("moodle.users", end)
    sync("referralhero.subscribers", end)
    bad = set(survey_world.truth.malformed("referralhero", "subscribers"))
    by_email: dict[str, set[str]] = defaultdict(set)
    for subscriber in survey_world.records("referralhero", "subscribers"):
        if subscriber["id"] not in bad:
            by_email[subscriber["email"].lower()].add(subscriber["id"])
    referrals = _referrals(warehouse_url)
    families = 0
    for ids in by_email.values():
        true_people = {survey_world.truth.person_of("referralhero", "subscribers", i) for i in ids}
        if len(true_people) > 1:
            families += 1
            assert len({referrals[i]["referred"] for i in ids}) == len(true_people)
    assert families > 0, "the world must have subscribers sharing a family email"


def test_rewards_land_for_the_subscriber_who_earned_them(
    warehouse_url: str, survey_world: World, sync: SyncFn
) -> None:
    end = datetime.now(UTC)
    sync("moodle.users", end)
    sync("referralhero.subscribers", end)
    bad = set(survey_world.truth.malformed("referralhero", "subscribers"))
    expected = {
        f"{s['id']}:{reward['id']}": (
            s["id"],
            reward["name"],
            datetime.fromtimestamp(reward["created_at"], UTC),
        )
        for s in survey_world.records("referralhero", "subscribers")
        if s["id"] not in bad
        for reward in s["rewards"]
    }
    assert expected, "the world must deliver some rewards"
    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute(
            "SELECT w.source_record_id, r.source_record_id, w.kind, w.issued_at, w.status,"
            " w.person_id = r.referred_person_id"
            " FROM core.reward w JOIN core.referral r USING (referral_id)"
        ).fetchall()
    assert {row[0]: (row[1], row[2], row[3]) for row in rows} == expected
    assert all(status == "issued" and same_person for *_, status, same_person in rows)


def test_a_referrer_held_in_quarantine_is_linked_once_it_lands(
    warehouse_url: str, survey_world: World, sync: SyncFn
) -> None:
    table = survey_world.table("referralhero", "subscribers")
    referrers = table.columns["referrer"]
    referrer_index = int(max(set(referrers[referrers >= 0].tolist()), key=lambda i: (referrers == i).sum()))
    referrer_id = table.id_of(referrer_index)
    table.malformed[referrer_index] = REASON_CODE["malformed_email"]  # the referrer's sign-up is broken
    first_end = datetime.now(UTC) - timedelta(hours=1)
    sync("moodle.users", first_end)
    sync("referralhero.subscribers", first_end)

    waiting = {k: r for k, r in _referrals(warehouse_url).items() if r["referrer_source_id"] == referrer_id}
    assert waiting and all(r["referrer"] is None for r in waiting.values()), "kept, with the referrer unknown"
    assert referrer_id not in _referrals(warehouse_url)

    table.malformed[referrer_index] = 0  # fixed at the source; a backfill re-reads the whole list
    sync("referralhero.subscribers", first_end + timedelta(hours=2), start=survey_world.start, run="backfill")

    referrals = _referrals(warehouse_url)
    assert referrals[referrer_id]["referred"] is not None
    for key in waiting:
        assert referrals[key]["referrer"] == referrals[referrer_id]["referred"]


def test_rerunning_the_same_interval_changes_nothing(warehouse_url: str, sync: SyncFn) -> None:
    end = datetime.now(UTC)
    sync("moodle.users", end)
    sync("referralhero.subscribers", end)
    before = snapshot(warehouse_url, SNAPSHOT_TABLES)
    audit = "SELECT count(*) FROM audit.audit_events WHERE action <> 'import'"
    with psycopg.connect(warehouse_url) as conn:
        changes_before = conn.execute(audit).fetchone()[0]

    sync("moodle.users", end, run="run-2")
    sync("referralhero.subscribers", end, run="run-2")

    assert snapshot(warehouse_url, SNAPSHOT_TABLES) == before
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute(audit).fetchone()[0] == changes_before
