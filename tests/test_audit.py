"""The audit trail refuses changes, records manual edits, and `verify` finds every kind of tampering."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from cdp import audit
from cdp.warehouse import Actor, connect, transaction

APPLICATION_ROLES = ["cdp_loader", "cdp_viewer", "cdp_editor", "cdp_admin", "cdp_finance", "cdp_partner"]
TESTER = Actor("pytest")


@pytest.fixture
def conn(warehouse_url: str) -> Iterator[psycopg.Connection]:
    with connect(warehouse_url, TESTER) as connection:
        yield connection


def _write_events(url: str, count: int, label: str = "import") -> None:
    with transaction(url, TESTER) as conn:
        for index in range(count):
            audit.record_event(conn, label, "core.person", str(index), {"rows": index})


def _verify(url: str, anchors: list[audit.Anchor] | None = None) -> audit.VerifyReport:
    with connect(url, TESTER) as conn:
        return audit.verify(conn, anchors or [])


def _tamper(url: str, statement: str, params: tuple = ()) -> None:
    """What a superuser could do: switch triggers off for the session and edit rows directly."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(statement, params)


# --- refusals -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", APPLICATION_ROLES)
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit.audit_events SET action = 'nothing happened'",
        "DELETE FROM audit.audit_events",
        "TRUNCATE audit.audit_events",
        "ALTER TABLE audit.audit_events DISABLE TRIGGER USER",
        "DROP TABLE audit.audit_events",
    ],
)
def test_application_roles_cannot_change_the_audit_trail(
    warehouse_url: str, role: str, statement: str
) -> None:
    _write_events(warehouse_url, 2)
    with psycopg.connect(warehouse_url) as conn:
        conn.execute(f"SET ROLE {role}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)
    assert _verify(warehouse_url).ok
    assert _verify(warehouse_url).rows_checked == 2


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit.audit_events SET action = 'nothing happened'",
        "DELETE FROM audit.audit_events WHERE seq = 1",
        "TRUNCATE audit.audit_events",
    ],
)
def test_even_the_owner_is_refused_by_the_triggers(warehouse_url: str, statement: str) -> None:
    _write_events(warehouse_url, 2)
    with (
        psycopg.connect(warehouse_url) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"),
    ):
        conn.execute(statement)


def test_raw_payloads_are_append_only(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        conn.execute(
            "INSERT INTO raw.records (source, stream, source_record_id, run_id, payload)"
            " VALUES ('moodle', 'users', '1', 'r', '{}')"
        )
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute("UPDATE raw.records SET payload = '{\"x\": 1}'")


def test_an_application_role_cannot_forge_the_chain_columns(warehouse_url: str) -> None:
    forged = (
        "INSERT INTO audit.audit_events"
        " (seq, occurred_at, db_role, session_role, action, entity_type, txid, prev_hash, hash)"
        " VALUES (999, '2000-01-01', 'cdp_admin', 'someone', 'note', 'x', 1, 'forged', 'forged')"
    )
    with psycopg.connect(warehouse_url) as conn:
        conn.execute("SET ROLE cdp_editor")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # since 0017 no role inserts at all
            conn.execute(forged)
    # Even the owner's direct insert gets its chain columns from the trigger, at commit.
    with psycopg.connect(warehouse_url) as conn:
        conn.execute(forged)
    with psycopg.connect(warehouse_url) as conn:
        row = conn.execute("SELECT seq, db_role, prev_hash, hash FROM audit.audit_events").fetchone()
    assert row[0] == 1
    assert row[1] == "postgres"
    assert row[2] == audit.GENESIS_HASH
    assert row[3] != "forged"
    assert _verify(warehouse_url).ok


# --- what gets recorded -----------------------------------------------------------------------------------


def test_a_manual_sql_edit_of_a_core_row_is_audited_with_before_and_after(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        person_id = conn.execute(
            "INSERT INTO core.person (given_name, family_name) VALUES ('Ada', 'Lovelace') RETURNING person_id"
        ).fetchone()[0]
    with psycopg.connect(warehouse_url) as conn:  # a person typing in psql: no actor, no Airflow run
        conn.execute("UPDATE core.person SET family_name = 'King' WHERE person_id = %s", (person_id,))

    with connect(warehouse_url, TESTER) as conn:
        event = conn.execute(
            "SELECT * FROM audit.audit_events WHERE entity_type = 'core.person' AND action = 'update'"
        ).fetchone()
    assert event["entity_id"] == str(person_id)
    # The chain holds the public part of each image; the personal fields are one reference away.
    assert event["before"][0]["person_id"] == str(person_id)
    assert "family_name" not in event["before"][0] and "Lovelace" not in str(event)
    with connect(warehouse_url, TESTER) as conn:
        images = conn.execute(
            "SELECT audit.with_personal_fields(%s::jsonb) AS before, audit.with_personal_fields(%s::jsonb) AS after",
            (Jsonb(event["before"]), Jsonb(event["after"])),
        ).fetchone()
        statement = conn.execute(
            "SELECT fields ->> 'statement' AS text FROM audit.personal_image"
            " WHERE image_set = %s AND ordinal = 0",
            (event["details"]["personal_images"],),
        ).fetchone()["text"]
    assert images["before"][0]["family_name"] == "Lovelace"
    assert images["after"][0]["family_name"] == "King"
    assert event["db_role"] == "postgres"
    assert event["actor"] is None
    assert "UPDATE core.person" in statement
    assert _verify(warehouse_url).ok


def test_events_carry_the_actor_and_airflow_run(warehouse_url: str) -> None:
    actor = Actor("airflow:cdp_sync", dag_id="cdp_sync", run_id="scheduled__2026-11-23", task_id="load")
    with transaction(warehouse_url, actor) as conn:
        audit.record_event(conn, "import", "raw.records", None, {"rows": 10})
    with connect(warehouse_url, TESTER) as conn:
        event = conn.execute(
            "SELECT actor, dag_id, run_id, task_id, details FROM audit.audit_events"
        ).fetchone()
    assert event == {
        "actor": "airflow:cdp_sync",
        "dag_id": "cdp_sync",
        "run_id": "scheduled__2026-11-23",
        "task_id": "load",
        "details": {"rows": 10},
    }


def test_a_bulk_upsert_is_one_event_not_one_per_row(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        conn.execute("INSERT INTO core.person (given_name) SELECT 'p' || g FROM generate_series(1, 500) g")
    with connect(warehouse_url, TESTER) as conn:
        events = conn.execute("SELECT entity_id, details FROM audit.audit_events").fetchall()
    assert len(events) == 1
    assert events[0]["entity_id"] is None
    assert events[0]["details"]["rows"] == 500


def test_a_rolled_back_transaction_leaves_no_gap(warehouse_url: str) -> None:
    _write_events(warehouse_url, 2)
    with pytest.raises(RuntimeError), transaction(warehouse_url, TESTER) as conn:
        audit.record_event(conn, "import", "core.person")
        raise RuntimeError("the task died")
    _write_events(warehouse_url, 1)
    report = _verify(warehouse_url)
    assert report.ok
    assert report.head.seq == 3


# --- tampering detected by verify ----------------------------------------------------------------------------


def test_an_intact_chain_verifies(warehouse_url: str) -> None:
    _write_events(warehouse_url, 20)
    report = _verify(warehouse_url)
    assert report.ok, report.summary()
    assert report.rows_checked == 20
    assert report.head.seq == 20


def test_an_edited_payload_is_found(warehouse_url: str) -> None:
    _write_events(warehouse_url, 10)
    _tamper(warehouse_url, "UPDATE audit.audit_events SET details = '{\"rows\": 0}' WHERE seq = 6")
    report = _verify(warehouse_url)
    assert not report.ok
    assert report.first_bad_seq == 6
    assert "does not match its hash" in report.problem


def test_an_edited_hash_is_found(warehouse_url: str) -> None:
    _write_events(warehouse_url, 10)
    _tamper(warehouse_url, "UPDATE audit.audit_events SET hash = repeat('a', 64) WHERE seq = 4")
    report = _verify(warehouse_url)
    assert (report.ok, report.first_bad_seq) == (False, 4)


def test_an_edited_row_with_a_recomputed_hash_breaks_the_next_link(warehouse_url: str) -> None:
    _write_events(warehouse_url, 10)
    _tamper(
        warehouse_url,
        "UPDATE audit.audit_events e SET details = '{\"rows\": 0}' WHERE seq = 5;"
        " UPDATE audit.audit_events e"
        " SET hash = encode(sha256(convert_to(e.prev_hash || audit.canonical_text(e), 'UTF8')), 'hex')"
        " WHERE seq = 5",
    )
    report = _verify(warehouse_url)
    assert (report.ok, report.first_bad_seq) == (False, 6)
    assert "prev_hash" in report.problem


def test_a_deleted_row_in_the_middle_is_found(warehouse_url: str) -> None:
    _write_events(warehouse_url, 10)
    _tamper(warehouse_url, "DELETE FROM audit.audit_events WHERE seq = 7")
    report = _verify(warehouse_url)
    assert (report.ok, report.first_bad_seq) == (False, 7)
    assert "missing" in report.problem


def test_rows_cut_from_the_end_are_found_against_the_exported_head(
    warehouse_url: str, anchor_file: Path
) -> None:
    _write_events(warehouse_url, 10)
    with connect(warehouse_url, TESTER) as conn:
        exported = audit.export_head(conn)
    assert exported == audit.Anchor(10, exported.hash)

    _tamper(warehouse_url, "DELETE FROM audit.audit_events WHERE seq > 8")

    assert _verify(warehouse_url).ok, "without the anchor a shortened chain still looks valid"
    report = _verify(warehouse_url, audit.read_anchors(anchor_file))
    assert (report.ok, report.first_bad_seq) == (False, 9)
    assert "removed from the end" in report.problem


def test_a_rewritten_tail_is_found_against_the_exported_head(warehouse_url: str, anchor_file: Path) -> None:
    _write_events(warehouse_url, 6)
    with connect(warehouse_url, TESTER) as conn:
        audit.export_head(conn)
    # Rewrite rows 5 and 6 and re-chain them consistently: only the anchor can tell.
    _tamper(
        warehouse_url,
        "UPDATE audit.audit_events e SET details = '{\"rows\": -1}' WHERE seq >= 5;"
        " UPDATE audit.audit_events e"
        " SET hash = encode(sha256(convert_to(e.prev_hash || audit.canonical_text(e), 'UTF8')), 'hex')"
        " WHERE seq = 5;"
        " UPDATE audit.audit_events e"
        " SET prev_hash = (SELECT hash FROM audit.audit_events WHERE seq = 5) WHERE seq = 6;"
        " UPDATE audit.audit_events e"
        " SET hash = encode(sha256(convert_to(e.prev_hash || audit.canonical_text(e), 'UTF8')), 'hex')"
        " WHERE seq = 6;",
    )
    assert _verify(warehouse_url).ok
    report = _verify(warehouse_url, audit.read_anchors(anchor_file))
    assert (report.ok, report.first_bad_seq) == (False, 6)


# --- concurrency ----------------------------------------------------------------------------------------------


def test_concurrent_writers_leave_one_gap_free_chain(warehouse_url: str) -> None:
    writers, events_each = 4, 25
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            barrier.wait()
            for index in range(events_each):
                # Small transactions interleave as much as possible; every other one also edits a core row.
                with transaction(warehouse_url, Actor(f"writer-{worker}")) as conn:
                    audit.record_event(conn, "import", "core.person", f"{worker}-{index}")
                    if index % 2:
                        conn.execute("INSERT INTO core.household (name) VALUES (%s)", (f"h{worker}-{index}",))
        except BaseException as error:  # noqa: BLE001 - collected and re-raised in the main thread
            errors.append(error)

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    expected_rows = writers * events_each + writers * (events_each // 2)
    report = _verify(warehouse_url)
    assert report.ok, report.summary()
    assert report.rows_checked == expected_rows
    with connect(warehouse_url, TESTER) as conn:
        seqs = [row["seq"] for row in conn.execute("SELECT seq FROM audit.audit_events ORDER BY seq")]
        actors = {row["actor"] for row in conn.execute("SELECT DISTINCT actor FROM audit.audit_events")}
    assert seqs == list(range(1, expected_rows + 1))
    assert actors == {f"writer-{worker}" for worker in range(writers)}
