"""Phase 4's volunteer streams: they land through the sync engine, link to the generator's true people, and a
re-run changes nothing; the success check catches a record that went neither to core nor to the quarantine."""

from __future__ import annotations

from collections import defaultdict

import psycopg
import pytest
from support import snapshot

from cdp.migration.platforms import PhaseCheckFailed, check_phase, link_report
from cdp.sync.specs import VOLUNTEER_SPECS
from cdp_sandbox import volunteers
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer
from cdp_sandbox.truth import sync_sandbox, truth_of_people

PEOPLE = ["moodle.users", "salesforce.Contact"]
GALAXY = [spec.key for spec in VOLUNTEER_SPECS]
TABLES = (
    "core.person", "core.person_source_id", "core.volunteer", "core.volunteer_shift", "core.volunteer_hours",
    "raw.records", "ops.quarantine",
)  # fmt: skip


def _key_holders(url: str) -> dict[str, list[str]]:
    """Exact key (normalised email | lower given name) -> the unmerged people holding it."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT email_normalized || '|' || lower(trim(given_name)), person_id::text FROM core.person"
            " WHERE merged_into IS NULL AND email_normalized IS NOT NULL AND given_name IS NOT NULL"
        ).fetchall()
    holders: dict[str, list[str]] = defaultdict(list)
    for key, person in rows:
        holders[key].append(person)
    return holders


@pytest.fixture
def synced(warehouse_url: str):
    world = World(seed=5, learners=300)
    with SandboxServer(world) as sandbox:
        sync_sandbox(warehouse_url, sandbox, PEOPLE, run_id="people")
        holders = _key_holders(warehouse_url)
        sync_sandbox(warehouse_url, sandbox, GALAXY, run_id="galaxy-1")
        yield world, sandbox, holders


def test_volunteers_land_and_link_to_the_right_people(warehouse_url: str, synced) -> None:
    world, _, holders = synced
    data = volunteers.of(world)
    with psycopg.connect(warehouse_url) as conn:
        landed = dict(
            conn.execute("SELECT source_record_id::int, person_id::text FROM core.volunteer").fetchall()
        )
        quarantined = {
            stream: {int(r) for (r,) in conn.execute(
                "SELECT DISTINCT source_record_id FROM ops.quarantine WHERE source = 'galaxy' AND stream = %s"
                " AND resolved_at IS NULL", (stream,))}
            for stream in volunteers.STREAMS
        }  # fmt: skip
        minutes = dict(
            conn.execute(
                "SELECT person_id::text, sum(minutes) FROM core.volunteer_hours GROUP BY 1"
            ).fetchall()
        )
    known = truth_of_people(warehouse_url, world)  # warehouse person -> real people of its LMS/CRM records

    malformed_users = set(data.malformed("users"))
    assert quarantined["users"] == malformed_users and malformed_users
    assert set(landed) == {data.users.id_of(i) for i in range(len(data.users))} - malformed_users

    # A volunteer whose exact key one known person holds is that person, and the generator agrees it is the
    # same real person; a key held by nobody or by several (a family's shared address, an unmerged
    # duplicate) makes a new person, left to the nightly dedupe. Never a link to someone else.
    joined = 0
    for uid, person in landed.items():
        record = data.users.record(uid - volunteers.FIRST_USER_ID)
        key = record["user_email"].strip().lower() + "|" + record["user_fname"].strip().lower()
        if len(holders.get(key, [])) == 1:
            assert person == holders[key][0], uid
            assert data.person_of("users", uid) in known[person], uid
            joined += 1
        else:
            assert person not in known, uid
    assert joined >= 0.75 * len(landed)

    # Shifts and hours of a quarantined volunteer wait in the quarantine, as do malformed ones.
    def orphans(stream: str) -> set[int]:
        table = data.tables[stream]
        out = set()
        for i in range(len(table)):
            record = table.record(i)
            if record["user"]["id"] in malformed_users:
                out.add(table.id_of(i))
        return out

    for stream in ("responses", "hours"):
        assert quarantined[stream] == set(data.malformed(stream)) | orphans(stream), stream

    # Hours land in whole minutes, per person as the platform logged them.
    person_of_user = landed
    expected: dict[str, int] = defaultdict(int)
    for i in range(len(data.hours)):
        record = data.hours.record(i)
        if data.hours.id_of(i) not in quarantined["hours"]:
            expected[person_of_user[record["user"]["id"]]] += data.hour_minutes(i)
    assert {p: int(m) for p, m in minutes.items()} == dict(expected)

    assert all(report.lost == 0 for report in link_report(warehouse_url))
    check_phase(warehouse_url)


def test_rerun_of_the_volunteer_sync_changes_nothing(warehouse_url: str, synced) -> None:
    _, sandbox, _ = synced
    before = snapshot(warehouse_url, TABLES)

    sync_sandbox(warehouse_url, sandbox, GALAXY, run_id="galaxy-2")

    assert snapshot(warehouse_url, TABLES) == before


def test_the_success_check_fails_on_a_record_neither_landed_nor_quarantined(
    warehouse_url: str, synced
) -> None:
    check_phase(warehouse_url)
    with psycopg.connect(warehouse_url) as conn:
        conn.execute(
            "INSERT INTO raw.records (source, stream, source_record_id, run_id, payload)"
            " VALUES ('galaxy', 'hours', '999999', 'by-hand', '{}')"
        )

    with pytest.raises(
        PhaseCheckFailed, match=r"galaxy.hours: 1 of \d+ records neither landed nor quarantined"
    ):
        check_phase(warehouse_url)
