"""Merges in the warehouse: guard rails hold, and an unmerge puts every core row back exactly, even after
a sync attached new rows to the survivor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from cdp.identity import guards, runs
from cdp.identity.errors import DedupeError
from cdp.identity.merges import merge_people, unmerge
from cdp.identity.runs import DedupeSettings, run_dedupe
from cdp.warehouse import Actor, transaction
from cdp_sandbox.generator import World
from cdp_sandbox.truth import sync_sandbox, true_duplicate_pairs, truth_of_people

ACTOR = Actor("pytest:dedupe")


def _merges(url: str) -> list[tuple[int, str, str]]:
    with psycopg.connect(url) as conn:
        return [
            (merge_id, str(survivor), str(absorbed))
            for merge_id, survivor, absorbed in conn.execute(
                "SELECT merge_id, survivor_id, absorbed_id FROM ops.identity_merge WHERE unmerged_at IS NULL"
                " ORDER BY merge_id"
            )
        ]


def _insert_person(
    conn: psycopg.Connection, given: str, family: str, dob: str, email: str, phone: str
) -> str:
    return str(
        conn.execute(
            "INSERT INTO core.person (given_name, family_name, date_of_birth, email, email_normalized, phone,"
            " phone_e164, is_learner) VALUES (%s, %s, %s, %s, lower(%s), %s, %s, true) RETURNING person_id",
            (given, family, dob, email, email, phone, phone),
        ).fetchone()[0]
    )


def test_family_members_sharing_an_email_are_not_merged(synced_url: str, world: World) -> None:
    family = ("okafor.home@example.org", "+2348031234567")
    with psycopg.connect(synced_url) as conn:
        mother = _insert_person(conn, "Amara", "Okafor", "1981-03-02", *family)
        son = _insert_person(conn, "Chidi", "Okafor", "2010-07-15", *family)
        daughter = _insert_person(conn, "Amara", "Okafor", "2012-05-09", *family)  # named after her mother
        mother_again = _insert_person(conn, "Amara", "Okafor", "1981-03-02", *family)  # a real duplicate
    real = truth_of_people(synced_url, world)

    run_dedupe(synced_url, ACTOR, "family")

    merged = {frozenset((s, a)) for _, s, a in _merges(synced_url)}
    assert frozenset((mother, mother_again)) in merged, "the control duplicate (same name and birth date)"
    family_ids = {mother, son, daughter, mother_again}
    for pair in merged:
        if pair & family_ids:
            assert pair == frozenset((mother, mother_again)), "a family member was merged with another"
    with psycopg.connect(synced_url) as conn:
        held = conn.execute(
            "SELECT guard FROM ops.identity_pair WHERE person_low = least(%s::uuid, %s::uuid)"
            " AND person_high = greatest(%s::uuid, %s::uuid)",
            (mother, daughter, mother, daughter),
        ).fetchone()
        # In the sandbox: no merge joins two different real people who share an email.
        shared_email_pairs = conn.execute(
            "SELECT m.survivor_id::text, m.absorbed_id::text FROM ops.identity_merge m"
            " JOIN core.person a ON a.person_id = m.survivor_id JOIN core.person b ON b.person_id = m.absorbed_id"
            " WHERE a.email_normalized = b.email_normalized"
        ).fetchall()
        scored_family_pairs = conn.execute(
            "SELECT s.person_low::text, s.person_high::text FROM ops.identity_pair_score s"
            " JOIN core.person a ON a.person_id = s.person_low JOIN core.person b ON b.person_id = s.person_high"
            " WHERE a.email_normalized = b.email_normalized AND lower(a.given_name) <> lower(b.given_name)"
        ).fetchall()
    assert held is not None and held[0] == "shared_contact_different_person", "the look-alike is for review"
    for survivor, absorbed in shared_email_pairs:
        if survivor in real and absorbed in real:
            assert real[survivor] & real[absorbed], "two different people sharing an email were merged"
    assert len(scored_family_pairs) > 10, "the sandbox has family emails among the scored pairs"


def test_without_the_guard_rails_the_look_alike_child_would_be_merged(synced_url: str) -> None:
    """The rule matters: the engine alone rates mother and daughter a match on name, email and phone."""
    family = ("nwosu.home@example.org", "+2348039876543")
    with psycopg.connect(synced_url) as conn:
        mother = _insert_person(conn, "Ngozi", "Nwosu", "1979-11-20", *family)
        daughter = _insert_person(conn, "Ngozi", "Nwosu", "2011-01-08", *family)

    run_dedupe(synced_url, ACTOR, "guarded")

    with psycopg.connect(synced_url) as conn:
        scored = conn.execute(
            "SELECT class, guard, levels FROM ops.identity_pair_score WHERE person_low = least(%s::uuid, %s::uuid)"
            " AND person_high = greatest(%s::uuid, %s::uuid)",
            (mother, daughter, mother, daughter),
        ).fetchone()
    assert scored is not None
    pair = {"person_low": mother, "person_high": daughter, "levels": scored[2]}
    facts = {
        mother: {
            "donor_only": False,
            "is_learner": True,
            "household_id": None,
            "email": family[0],
            "phone": family[1],
        },
        daughter: {
            "donor_only": False,
            "is_learner": True,
            "household_id": None,
            "email": family[0],
            "phone": family[1],
        },
    }
    assert guards.contact_guard(pair, facts) == "shared_contact_different_person"
    same_birth_date = {**pair, "levels": {**scored[2], "date_of_birth": 3}}
    assert guards.contact_guard(same_birth_date, facts) is None, "with one birth date they would merge"
    assert frozenset((mother, daughter)) not in {frozenset((s, a)) for _, s, a in _merges(synced_url)}


def test_merge_then_unmerge_restores_every_core_table_exactly(
    synced_url: str, world: World, core_snapshot, audit_events
) -> None:
    before = core_snapshot(synced_url)
    real = truth_of_people(synced_url, world)
    truth = true_duplicate_pairs(real)

    report = run_dedupe(synced_url, ACTOR, "night-1")

    merges = _merges(synced_url)
    assert report.merged == len(merges) > 20
    merged_pairs = {tuple(sorted((s, a))) for _, s, a in merges}
    assert merged_pairs <= truth, "every automatic merge in the sandbox joins records of one real person"
    merged_state = core_snapshot(synced_url)
    assert merged_state != before
    with psycopg.connect(synced_url) as conn:
        moved = conn.execute("SELECT count(*) FROM ops.identity_merge_move").fetchone()[0]
        followers = conn.execute("SELECT count(*) FROM core.person WHERE merged_into IS NOT NULL").fetchone()[
            0
        ]
        orphans = conn.execute(
            "SELECT count(*) FROM core.person_source_id s JOIN core.person p USING (person_id)"
            " WHERE p.merged_into IS NOT NULL"
        ).fetchone()[0]
    assert followers == len(merges)
    assert orphans == 0, "every source identity of an absorbed person points to its survivor"
    assert moved > len(merges)
    merge_events = audit_events(synced_url, "merge")
    assert sorted(e["details"]["merge_id"] for e in merge_events) == [m for m, _, _ in merges]
    assert all(e["details"]["rows_moved"] for e in merge_events)

    for merge_id, _, _ in reversed(merges):
        unmerge(synced_url, ACTOR, merge_id, reason="test")

    assert core_snapshot(synced_url) == before
    assert sorted(e["details"]["merge_id"] for e in audit_events(synced_url, "unmerge")) == [
        m for m, _, _ in merges
    ]
    with pytest.raises(DedupeError, match="already undone"):
        unmerge(synced_url, ACTOR, merges[0][0])


def test_an_undone_merge_is_not_redone_by_the_next_run(synced_url: str) -> None:
    run_dedupe(synced_url, ACTOR, "night-1")
    merge_id, survivor, absorbed = _merges(synced_url)[0]
    unmerge(synced_url, ACTOR, merge_id)

    run_dedupe(synced_url, ACTOR, "night-2", full=True)

    assert (survivor, absorbed) not in {(s, a) for _, s, a in _merges(synced_url)}
    with psycopg.connect(synced_url) as conn:
        status, allowed = conn.execute(
            "SELECT status, auto_merge_allowed FROM ops.identity_pair WHERE person_low = least(%s::uuid, %s::uuid)"
            " AND person_high = greatest(%s::uuid, %s::uuid)",
            (survivor, absorbed, survivor, absorbed),
        ).fetchone()
    assert (status, allowed) == ("queued", False)


def test_unmerge_refuses_while_a_later_merge_builds_on_it(synced_url: str, core_snapshot) -> None:
    before = core_snapshot(synced_url)
    with psycopg.connect(synced_url) as conn:
        a, b, c = (
            str(row[0])
            for row in conn.execute(
                "SELECT p.person_id FROM core.person p WHERE EXISTS (SELECT 1 FROM core.enrollment e"
                " WHERE e.person_id = p.person_id) ORDER BY p.person_id LIMIT 3"
            )
        )
    with transaction(synced_url, ACTOR) as conn:
        first = merge_people(conn, b, a, reason="review")
        second = merge_people(conn, c, b, reason="review")
    with psycopg.connect(synced_url) as conn:
        chained = conn.execute(
            "SELECT count(*) FROM core.person WHERE person_id IN (%s, %s) AND merged_into = %s", (a, b, c)
        ).fetchone()[0]
        enrollments_of_a = conn.execute(
            "SELECT count(*) FROM core.enrollment WHERE person_id = %s", (a,)
        ).fetchone()[0]
    assert chained == 2, "the earlier absorbed person now follows the new survivor directly"
    assert enrollments_of_a == 0

    with pytest.raises(DedupeError, match=f"undo merge {second} first"):
        unmerge(synced_url, ACTOR, first)
    unmerge(synced_url, ACTOR, second)
    unmerge(synced_url, ACTOR, first)

    assert core_snapshot(synced_url) == before


def test_unmerge_after_a_sync_sends_rows_attached_since_the_merge_back(
    half_synced, core_snapshot, audit_events
) -> None:
    url, world, sandbox, cut = half_synced
    before = core_snapshot(url)
    run_dedupe(url, ACTOR, "night-1")
    merges = _merges(url)
    later_users = {str(e["userid"]) for e in world.records("moodle", "enrollments", since=cut)}
    with psycopg.connect(url) as conn:
        moved_users = {
            row[0]: row[1]
            for row in conn.execute(
                "SELECT row_key ->> 'source_record_id', merge_id FROM ops.identity_merge_move"
                " WHERE table_name = 'core.person_source_id' AND row_key ->> 'source' = 'moodle.user'"
            )
        }
    watched = sorted(set(moved_users) & later_users)
    assert watched, "some absorbed learners enrol again after the merge (test data)"

    sync_sandbox(
        url,
        sandbox,
        ["moodle.enrollments", "moodle.course_completions"],
        end=datetime.now(UTC),
        run_id="sync-2",
    )

    survivor_of = {m: s for m, s, _ in merges}
    absorbed_of = {m: a for m, _, a in merges}
    new_keys = [
        str(e["id"]) for e in world.records("moodle", "enrollments", since=cut) if str(e["userid"]) in watched
    ]
    with psycopg.connect(url) as conn:
        on_survivor = conn.execute(
            "SELECT count(*) FROM core.enrollment e JOIN raw.records r ON r.source = 'moodle'"
            " AND r.stream = 'enrollments' AND r.source_record_id = e.source_record_id"
            " WHERE e.source_record_id = ANY(%s) AND e.person_id = ANY(%s::uuid[])",
            (new_keys, list(survivor_of.values())),
        ).fetchone()[0]
    assert on_survivor > 0, "the sync attached new enrollments of absorbed learners to their survivors"

    for merge_id, _, _ in reversed(merges):
        unmerge(url, ACTOR, merge_id)

    after = core_snapshot(url)
    for table, rows in before.items():
        assert set(rows) <= set(after[table]), f"{table}: a row from before the merge is not restored exactly"
    grown = {table for table in after if set(after[table]) != set(before[table])}
    assert grown <= {"core.enrollment", "core.course_completion"}, grown
    with psycopg.connect(url) as conn:
        misplaced = conn.execute(
            "SELECT count(*) FROM core.enrollment e"
            " CROSS JOIN LATERAL (SELECT payload FROM raw.records r WHERE r.source = 'moodle'"
            "   AND r.stream = 'enrollments' AND r.source_record_id = e.source_record_id"
            " ORDER BY raw_id DESC LIMIT 1) r"
            " JOIN core.person_source_id s ON s.source = 'moodle.user' AND s.source_record_id = r.payload ->> 'userid'"
            " WHERE e.person_id <> s.person_id"
        ).fetchone()[0]
        returned = conn.execute(
            "SELECT count(*) FROM core.enrollment WHERE source_record_id = ANY(%s) AND person_id = ANY(%s::uuid[])",
            (new_keys, [absorbed_of[moved_users[user]] for user in watched]),
        ).fetchone()[0]
        landed = conn.execute(
            "SELECT count(*) FROM core.enrollment WHERE source_record_id = ANY(%s)", (new_keys,)
        ).fetchone()[0]
    assert misplaced == 0, "every enrollment is on the person its learner record belongs to"
    assert returned == landed >= on_survivor
    details = [e["details"] for e in audit_events(url, "unmerge")]
    assert sum(d["returned_after_merge"] for d in details) >= on_survivor


def test_a_nightly_run_compares_only_new_or_changed_people_against_everyone(synced_url: str) -> None:
    # Everyone here was synced minutes ago: without the look-back the night's run sees only the newcomer.
    settings = DedupeSettings(incremental_overlap=timedelta(0))
    first = run_dedupe(synced_url, ACTOR, "night-1", settings=settings)
    with psycopg.connect(synced_url) as conn:
        original = conn.execute(
            "SELECT p.person_id::text, p.given_name, p.family_name, p.date_of_birth::text, p.email, p.phone"
            " FROM core.person p WHERE p.merged_into IS NULL AND p.date_of_birth IS NOT NULL"
            " AND p.email IS NOT NULL ORDER BY p.person_id LIMIT 1"
        ).fetchone()
        # The same learner registers again with a new email address.
        again = _insert_person(
            conn, original[1], original[2], original[3], "second.address@example.net", original[5]
        )

    second = run_dedupe(synced_url, ACTOR, "night-2", settings=settings)
    with_look_back = run_dedupe(synced_url, ACTOR, "night-3")

    assert with_look_back.people_compared > 1, "the default look-back re-compares the recent syncs"
    assert (first.mode, second.mode) == ("full", "incremental")
    assert second.people_compared == 1 < first.people_compared
    with psycopg.connect(synced_url) as conn:
        scored = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE person_low = %s OR person_high = %s)"
            " FROM ops.identity_pair_score WHERE run_id = 'night-2'",
            (again, again),
        ).fetchone()
        found = conn.execute(
            "SELECT status FROM ops.identity_pair WHERE person_low = least(%s::uuid, %s::uuid)"
            " AND person_high = greatest(%s::uuid, %s::uuid)",
            (original[0], again, original[0], again),
        ).fetchone()
    assert scored[0] == scored[1] > 0, "every pair scored involves the new person"
    assert found is not None and found[0] in ("merged", "queued")


def test_the_same_people_score_the_same_whatever_their_order_on_disk(synced_url: str) -> None:
    """Auditors re-run a night and must get the same scores: the model's random pairs are drawn by row
    position, so the rows must come in an order of their own, not in the order the heap holds them."""

    def scores(run_id: str) -> list[tuple[str, str, float, str]]:  # scored only: nothing merges in between
        plan = runs.start_run(synced_url, ACTOR, run_id, full=True)
        for shard in range(plan.shards):
            runs.score_shard(synced_url, ACTOR, run_id, shard)
        with psycopg.connect(synced_url) as conn:
            return [
                (str(low), str(high), score, cls)
                for low, high, score, cls in conn.execute(
                    "SELECT person_low, person_high, score, class FROM ops.identity_pair_score"
                    " WHERE run_id = %s ORDER BY 1, 2",
                    (run_id,),
                )
            ]

    before = scores("order-1")
    with psycopg.connect(synced_url) as conn:
        heap_order = "SELECT person_id FROM core.person ORDER BY ctid"
        on_disk = conn.execute(heap_order).fetchall()
        # Rewriting half the people moves their rows to the heap's end: the same people, another order.
        conn.execute(
            "ALTER TABLE core.person DISABLE TRIGGER USER;"
            " UPDATE core.person SET given_name = given_name WHERE person_id::text < '8';"
            " ALTER TABLE core.person ENABLE TRIGGER USER"
        )
        assert conn.execute(heap_order).fetchall() != on_disk
    assert len(before) > 100
    assert scores("order-2") == before
