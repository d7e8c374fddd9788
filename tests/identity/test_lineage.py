"""Post-merge lineage: every core column that holds a person id moves on merge and moves back exactly on
unmerge, rows that syncs attached after the merge included.

The catalog decides what "every" means (pg_constraint / information_schema), so a table another stream
adds later fails here until `sql/dedupe/post_merge_lineage.sql` covers it. The round trip compares, column
by column, a warehouse where people were merged, synced further and unmerged with the same warehouse
synced further without any merge."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg.rows import dict_row
from support import create_database, drop_database

from cdp.identity import merges as identity_merges
from cdp.identity.merges import merge_people, person_references, uncovered_person_columns, unmerge
from cdp.paths import SQL_DIR
from cdp.sources.spec import SOURCES_DIR
from cdp.warehouse import Actor, transaction
from cdp.warehouse.embedded import EmbeddedServer
from cdp_sandbox.generator import World
from cdp_sandbox.server import SandboxServer
from cdp_sandbox.truth import sync_sandbox

ACTOR = Actor("pytest:lineage")

#: Tables whose rows carry their own source key; the others are keyed below.
_NATURAL_KEY = {"core.person_source_id": ("source", "source_record_id")}


def test_every_core_person_column_is_covered_by_the_lineage(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url, row_factory=dict_row) as conn:
        columns = {(r.table, r.column) for r in person_references(conn)}
        problems = uncovered_person_columns(conn)
    # The catalog sees the streams' tables, not a list kept by hand.
    assert {("core.survey_response", "person_id"), ("core.referral", "referrer_person_id"),
            ("core.referral", "referred_person_id"), ("core.reward", "person_id"),
            ("core.consent", "person_id"), ("core.donation_soft_credit", "person_id"),
            ("core.organization_membership", "person_id")} <= columns  # fmt: skip
    assert problems == []
    assert columns == identity_merges.lineage_columns() | identity_merges.UNSYNCED_COLUMNS


def test_a_column_the_lineage_does_not_know_is_reported(warehouse_url: str) -> None:
    with transaction(warehouse_url, ACTOR) as conn:
        conn.execute(
            "CREATE TABLE core.mentor_session (session_id uuid PRIMARY KEY, mentee_id uuid REFERENCES core.person,"
            " mentor_person_id uuid)"
        )
    with psycopg.connect(warehouse_url, row_factory=dict_row) as conn:
        problems = uncovered_person_columns(conn)
    assert problems == [
        "core.mentor_session.mentee_id: no branch in post_merge_lineage.sql",
        "core.mentor_session.mentor_person_id: holds a person id without a foreign key",
    ]


def test_columns_left_out_of_the_lineage_are_written_by_no_sync() -> None:
    """The exemptions are true: no sync SQL writes core.person.merged_into, and none writes certificates
    (the lineage would need a branch the day one does)."""
    paths = [*(SQL_DIR / "sync").glob("*.sql"), *SOURCES_DIR.glob("*/sql/*.sql")]
    texts = {str(path): path.read_text() for path in paths}
    assert len(texts) > 30, "no sync SQL found: the check would pass on nothing"
    assert not [name for name, text in texts.items() if re.search(r"merged_into\s*=", text)]
    assert not [name for name, text in texts.items() if "core.certificate" in text]
    assert not identity_merges.lineage_columns() & identity_merges.UNSYNCED_COLUMNS
    assert {
        ("core.person", "merged_into"),
        ("core.certificate", "person_id"),
    } == identity_merges.UNSYNCED_COLUMNS


# ------------------------------------------------------------------------------------------- round trip
@pytest.fixture(scope="module")
def cut_warehouse(
    pg_server: EmbeddedServer, migrated_template: str
) -> Iterator[tuple[str, SandboxServer, World]]:
    """Every stream synced up to 60% of the world's history; the sandbox keeps serving the rest."""
    world = World(seed=23, learners=250, edited_share=0.0)
    cut = world.start + (world.end - world.start) * 0.6
    name = create_database(pg_server, migrated_template)
    with SandboxServer(world) as server:
        sync_sandbox(pg_server.url(name), server, end=cut)
        yield name, server, world
    drop_database(pg_server, name)


def _person_columns(url: str, known: set[str]) -> dict[tuple[str, str], set[tuple]]:
    """For each core column holding a person id: its rows as (row's natural key, person). A person of the
    common template (`known`) is named by its id, one created since by the source identities it holds (so
    two copies whose later syncs created people with different uuids compare)."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        identities: dict[str, tuple] = {}
        for row in conn.execute(
            "SELECT person_id::text, array_agg(source || ':' || source_record_id ORDER BY source, source_record_id)"
            " AS ids FROM core.person_source_id GROUP BY person_id"
        ):
            identities[row["person_id"]] = tuple(row["ids"])
        references = person_references(conn)
        state: dict[tuple[str, str], set[tuple]] = {}
        for reference in references:
            schema, table = reference.table.split(".")
            has_source_key = conn.execute(
                "SELECT count(*) = 2 AS yes FROM information_schema.columns WHERE table_schema = %s"
                " AND table_name = %s AND column_name IN ('source', 'source_record_id')",
                (schema, table),
            ).fetchone()["yes"]
            if reference.table in _NATURAL_KEY or has_source_key:
                key = "t.source || ':' || t.source_record_id"
            elif reference.table == "core.person":
                key = "t.person_id::text"
            elif reference.table == "core.organization_membership":
                key = "o.source || ':' || o.source_record_id || ':' || t.role || ':' || t.cohort"
            else:
                raise AssertionError(f"{reference.table}: no natural key known to this test")
            join = (
                "JOIN core.organization o USING (organization_id)"
                if reference.table == "core.organization_membership"
                else ""
            )
            rows = conn.execute(
                f"SELECT {key} AS k, t.{reference.column}::text AS p FROM {reference.table} t {join}"  # noqa: S608 - names from the catalog
                f" WHERE t.{reference.column} IS NOT NULL"
            ).fetchall()

            def name(person: str) -> tuple:
                if person in known:
                    return (person,)
                return identities.get(person, ("unidentified", person))

            if reference.table == "core.person":
                state[(reference.table, reference.column)] = {(name(r["k"]), name(r["p"])) for r in rows}
            else:
                state[(reference.table, reference.column)] = {(r["k"], name(r["p"])) for r in rows}
        return state


def test_merge_sync_unmerge_round_trip_over_every_person_column(
    pg_server: EmbeddedServer, cut_warehouse, audit_events
) -> None:
    template, server, _world = cut_warehouse
    reference_name = create_database(pg_server, template)
    merged_name = create_database(pg_server, template)
    try:
        reference_url, url = pg_server.url(reference_name), pg_server.url(merged_name)
        end = datetime.now(UTC)
        sync_sandbox(reference_url, server, end=end, run_id="sync-2")

        # Merge people in pairs, nearly every person known at the cut: half of what arrives later belongs to
        # an absorbed person and is attached to a survivor by the sync. Left out: people whom the later sync
        # joins a new source record to by exact key (email and given name). While merged, the absorbed
        # person's key is the survivor's, so the sync joins the record to the survivor, and no lineage
        # records whose key it was (the next dedupe run after the unmerge proposes the pair).
        # Paired in the order of their first source identity, not of their random uuids: who is absorbed
        # decides which branches get rows back, and only a handful of people get a later referral or consent
        # (about one run in fifty absorbed none of them).
        with psycopg.connect(url) as conn:
            people = [
                str(row[0])
                for row in conn.execute(
                    "SELECT p.person_id FROM core.person p WHERE p.merged_into IS NULL ORDER BY (SELECT"
                    " min(s.source || ':' || s.source_record_id) FROM core.person_source_id s"
                    " WHERE s.person_id = p.person_id), p.person_id"
                )
            ]
            at_cut = {
                tuple(row)
                for row in conn.execute("SELECT source, source_record_id FROM core.person_source_id")
            }
        with psycopg.connect(reference_url) as conn:
            joined_later = {
                str(person)
                for source, record, person in conn.execute(
                    "SELECT source, source_record_id, person_id FROM core.person_source_id"
                )
                if (source, record) not in at_cut
            } & set(people)
            # Nor whoever holds the exact key of a person the later sync creates, or of a ticket requester it
            # leaves unlinked (email and full name): two such people merged with each other would stop making
            # that key ambiguous, and the sync would join records it keeps apart without the merge. (A merge
            # with anyone else changes nothing: an absorbed person holds its keys as its survivor.)
            new_keys = {
                row[0]
                for row in conn.execute(
                    "SELECT email_normalized || '|' || lower(trim(given_name)) FROM core.person"
                    " WHERE person_id <> ALL(%s::uuid[]) AND email_normalized IS NOT NULL",
                    (people,),
                )
            }
            unlinked_requesters = {
                row[0]
                for row in conn.execute(
                    "SELECT DISTINCT lower(trim(r.payload #>> '{requester,email}')) || '|'"
                    " || lower(trim(r.payload #>> '{requester,name}'))"
                    " FROM core.support_ticket t JOIN raw.records r ON r.source = 'zendesk'"
                    " AND r.stream = 'tickets' AND r.source_record_id = t.source_record_id"
                    " WHERE t.person_id IS NULL AND r.payload #>> '{requester,email}' IS NOT NULL"
                )
            }
        with psycopg.connect(url) as conn:
            joined_later |= {
                str(row[0])
                for row in conn.execute(
                    "SELECT person_id FROM core.person WHERE email_normalized || '|' || lower(trim(given_name))"
                    " = ANY(%s) OR email_normalized || '|' || lower(trim(coalesce(given_name, '') || ' '"
                    " || coalesce(family_name, ''))) = ANY(%s) OR email_normalized || '|'"
                    " || lower(trim(coalesce(family_name, '') || ' ' || coalesce(given_name, ''))) = ANY(%s)",
                    (list(new_keys), list(unlinked_requesters), list(unlinked_requesters)),
                )
            }
        candidates = [person for person in people if person not in joined_later]
        assert len(joined_later) < len(people) / 4 and len(candidates) > 200
        merges = []
        with transaction(url, ACTOR) as conn:
            for survivor, absorbed in zip(candidates[0::2], candidates[1::2], strict=False):
                merges.append(merge_people(conn, survivor, absorbed, reason="review"))
        sync_sandbox(url, server, end=end, run_id="sync-2")
        for merge_id in reversed(merges):
            unmerge(url, ACTOR, merge_id, reason="test")

        expected, actual = _person_columns(reference_url, set(people)), _person_columns(url, set(people))
        assert set(expected) == set(actual)
        differences = {
            f"{table}.{column}": {
                "expected, not found": sorted(expected[(table, column)] - actual[(table, column)])[:3],
                "found, not expected": sorted(actual[(table, column)] - expected[(table, column)])[:3],
                "counts": (len(expected[(table, column)] - actual[(table, column)]),
                           len(actual[(table, column)] - expected[(table, column)])),
            }
            for table, column in expected
            if expected[(table, column)] != actual[(table, column)]
        }  # fmt: skip
        assert differences == {}

        returned: dict[str, int] = {}
        for event in audit_events(url, "unmerge"):
            for column, count in event["details"]["returned_by_column"].items():
                returned[column] = returned.get(column, 0) + count
        exercised = {tuple(column.rsplit(".", 1)) for column in returned}
        # The branches this world gives rows to after the cut (the others are checked by the equality above
        # only: this world's later records bring no new account link, reward or Zigpoll participant of an
        # absorbed person, and no subscriber resolved to one).
        assert exercised >= {
            ("core.enrollment", "person_id"), ("core.course_completion", "person_id"),
            ("core.donation", "person_id"), ("core.donation_soft_credit", "person_id"),
            ("core.consent", "person_id"), ("core.survey_response", "person_id"),
            ("core.referral", "referrer_person_id"),
        }, exercised  # fmt: skip
        assert exercised <= identity_merges.lineage_columns()
        assert sum(returned.values()) > 100
    finally:
        drop_database(pg_server, reference_name)
        drop_database(pg_server, merged_name)
