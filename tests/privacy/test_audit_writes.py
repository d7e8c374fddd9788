"""Audit events are written only by the warehouse, and nobody can stall the audited writes (issue 15, item 5).

With real logins of every application role: a forged event (an actor of `cli:dpo`, a `dag_id` of
`cdp_sync`) cannot be inserted directly; an event written through audit.record_event carries the real
login beside the claimed actor; and a login that leaves its transaction open after an audited write (or
after forcing its seal) does not hold up anyone else's audited write.
"""

from __future__ import annotations

import time

import psycopg
import pytest

from cdp import audit

ROLES = ("cdp_loader", "cdp_viewer", "cdp_editor", "cdp_admin", "cdp_finance", "cdp_partner", "cdp_outreach")

FORGED_EVENT = (
    "INSERT INTO audit.audit_events (seq, occurred_at, db_role, session_role, actor, action, entity_type,"
    " dag_id, run_id, details, txid, prev_hash, hash)"
    " VALUES (0, now(), '', '', 'cli:dpo', 'privacy_export', 'core.person', 'cdp_sync', 'manual__x', '{}', 0, '', '')"
)
FORGED_IMAGE = (
    "INSERT INTO audit.personal_image (image_id, image_set, ordinal, fields, salt, seal)"
    " VALUES (gen_random_uuid(), gen_random_uuid(), 1, '{}', 's', 'x')"
)


@pytest.mark.parametrize("role", ROLES)
def test_no_application_login_can_insert_an_audit_event_or_image(
    warehouse_url: str, logins, role: str
) -> None:
    organization = None
    if role == "cdp_partner":
        with psycopg.connect(warehouse_url) as conn:
            organization = conn.execute(
                "INSERT INTO core.organization (name, source, source_record_id) VALUES ('Org', 't', 'o1')"
                " RETURNING organization_id"
            ).fetchone()[0]
    url = logins(role, organization) if organization else logins(role)
    for statement in (FORGED_EVENT, FORGED_IMAGE):
        with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)
    with psycopg.connect(warehouse_url) as conn:
        assert (
            conn.execute("SELECT count(*) FROM audit.audit_events WHERE actor = 'cli:dpo'").fetchone()[0] == 0
        )


def test_an_event_through_record_event_names_the_real_login_beside_the_claimed_actor(
    warehouse_url: str, logins
) -> None:
    url = logins("cdp_editor")
    login = psycopg.conninfo.conninfo_to_dict(url)["user"]
    with psycopg.connect(url) as conn:
        conn.execute(
            "SELECT set_config('cdp.actor', 'cli:dpo', false), set_config('cdp.dag_id', 'cdp_sync', false)"
        )
        conn.execute("SELECT audit.record_event('note', 'x')")
    with psycopg.connect(warehouse_url) as conn:
        row = conn.execute(
            "SELECT actor, dag_id, session_role, db_role, seq IS NOT NULL FROM audit.audit_events WHERE action = 'note'"
        ).fetchone()
        report = audit.verify(conn)
    assert row == ("cli:dpo", "cdp_sync", login, login, True)
    assert report.ok and report.unsealed == 0


def _audited_write(url: str, name: str) -> float:
    """One audited write (a person row, so the change trigger writes an event), committed; its seconds."""
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        conn.execute("SET statement_timeout = '5s'")
        conn.execute("INSERT INTO core.person (given_name) VALUES (%s)", (name,))
    return time.perf_counter() - started


@pytest.mark.parametrize("force_seal", [False, True], ids=["open-after-insert", "open-after-forced-seal"])
def test_a_login_holding_its_transaction_open_stalls_no_other_audited_write(
    warehouse_url: str, logins, force_seal: bool
) -> None:
    holder_url, writer_url = logins("cdp_loader"), logins("cdp_loader")
    holder = psycopg.connect(holder_url)
    try:
        holder.execute("INSERT INTO core.person (given_name) VALUES ('holder')")
        if force_seal:  # fires the deferred seal now, so the holder keeps the chain's lock while it idles
            holder.execute("SET CONSTRAINTS ALL IMMEDIATE")
        seconds = [_audited_write(writer_url, f"writer {i}") for i in range(3)]
    finally:
        holder.commit()
        holder.close()
    assert max(seconds) < 2, f"audited writes waited for the open transaction: {seconds}"

    with psycopg.connect(warehouse_url) as conn:
        report = audit.verify(conn)
        events = conn.execute(
            "SELECT count(*) FROM audit.audit_events WHERE entity_type = 'core.person' AND seq IS NOT NULL"
        ).fetchone()[0]
    assert report.ok, report.summary()
    assert report.unsealed == 0 and events == 4  # everything is in the chain once the holder has gone


def test_sealing_stays_tamper_evident(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        conn.execute("INSERT INTO core.person (given_name) VALUES ('a')")
        conn.execute("SELECT audit.record_event('note', 'x')")
    # The seal is the one update the trigger lets through, and only from NULL, by cdp_definer.
    with psycopg.connect(warehouse_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE audit.audit_events SET hash = NULL, seq = NULL, prev_hash = NULL WHERE seq = 1")
    with psycopg.connect(warehouse_url) as conn:
        conn.execute("ALTER TABLE audit.audit_events DISABLE TRIGGER refuse_update_delete")
        conn.execute("UPDATE audit.audit_events SET entity_id = 'edited' WHERE seq = 2")
        conn.execute("ALTER TABLE audit.audit_events ENABLE TRIGGER refuse_update_delete")
    with psycopg.connect(warehouse_url) as conn:
        report = audit.verify(conn)
    assert not report.ok and report.first_bad_seq == 2


def test_no_application_role_may_write_any_audit_table(warehouse_url: str) -> None:
    """Every table in the audit schema, present and future: writes belong to the definer functions."""
    query = (
        "SELECT r.rolname, c.relname, p.privilege FROM pg_class c, pg_roles r,"
        " unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS p(privilege)"
        " WHERE c.relnamespace = 'audit'::regnamespace AND c.relkind IN ('r', 'p')"
        " AND r.rolname = ANY(%s) AND has_table_privilege(r.oid, c.oid, p.privilege) ORDER BY 1, 2, 3"
    )
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute(query, (list(ROLES),)).fetchall() == []
        conn.execute("GRANT INSERT ON audit.personal_column TO cdp_editor")  # breaking the rule is seen
        assert conn.execute(query, (list(ROLES),)).fetchall() == [("cdp_editor", "personal_column", "INSERT")]
        conn.rollback()
