"""cdp privacy export / erase: everything about a person out; personal data gone while the financial trail
stays; both audited."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from privacy_seed import add_consent, add_person, eligible, years_ago
from psycopg import sql
from psycopg.types.json import Jsonb

from cdp import audit, privacy
from cdp.cli import main
from cdp.crm import push
from cdp.warehouse import Actor

EMAIL = "Erasmus.Target@Example.org"
# What a support ticket keeps of its requester's email (0015): the sha256 of the normalised address.
TICKET_EMAIL_HASH = hashlib.sha256(EMAIL.lower().encode()).hexdigest()
ACTOR = Actor("test-dpo")
RECEIVED = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


def _charge(charge_id: str, email: str, name: str, amount: int, ftid: str) -> dict:
    return {
        "id": charge_id, "object": "charge", "amount": amount, "currency": "usd", "created": 1741064767,
        "status": "succeeded", "balance_transaction": f"txn_{charge_id}",
        "metadata": {"financial_transaction_id": ftid},
        "billing_details": {"email": email, "name": name, "phone": "+1 555 0100", "address": {"line1": "1 Main St"}},
    }  # fmt: skip


@pytest.fixture
def target(warehouse_url: str) -> dict[str, str]:
    with psycopg.connect(warehouse_url) as conn:
        household = conn.execute(
            "INSERT INTO core.household (name, street, locality, postcode, country) VALUES"
            " ('The Targets', '1 Main St', 'Springfield', '12345', 'US') RETURNING household_id::text"
        ).fetchone()[0]
        person = add_person(conn, born=years_ago(35), email=EMAIL, given_name="Erasmus")
        conn.execute(
            "UPDATE core.person SET phone = '+1 555 0100', household_id = %s WHERE person_id = %s",
            (household, person),
        )
        duplicate = add_person(
            conn, born=years_ago(35), email="erasmus.old@example.org", given_name="Erasmus"
        )
        conn.execute("UPDATE core.person SET merged_into = %s WHERE person_id = %s", (person, duplicate))
        other = add_person(conn, born=years_ago(50), email="keep.me@example.org", given_name="Keeper")
        conn.execute(
            "INSERT INTO core.person_source_id (source, source_record_id, person_id) VALUES"
            " ('moodle.user', '501', %s), ('stripe.billing', %s, %s), ('moodle.user', '777', %s)",
            (person, EMAIL.lower(), person, other),
        )
        raw = [
            ("moodle", "users", "501", {"id": 501, "firstname": "Erasmus", "email": EMAIL, "timecreated": 1}),
            ("stripe", "charges", "ch_9", _charge("ch_9", EMAIL, "Erasmus Target", 5000, "FT-9")),
            ("moodle", "users", "777", {"id": 777, "firstname": "Keeper", "email": "keep.me@example.org"}),
            (
                "typeform",
                "webhook",
                "evt-1",
                {"event_id": "evt-1", "form_response": {"answers": [{"email": EMAIL}]}},
            ),
        ]
        for source, stream, record_id, payload in raw:
            conn.execute(
                "INSERT INTO raw.records (source, stream, source_record_id, run_id, payload)"
                " VALUES (%s, %s, %s, 'r', %s)",
                (source, stream, record_id, Jsonb(payload)),
            )
        conn.execute(
            "INSERT INTO core.donation (financial_transaction_id, person_id, household_id, amount_minor, currency,"
            " received_at, source, source_record_id) VALUES ('FT-9', %s, %s, 5000, 'USD', %s, 'stripe', 'ch_9')",
            (person, household, RECEIVED),
        )
        add_consent(conn, person, "given", given_by="Erasmus Target")
        add_consent(conn, duplicate, "given", purpose="fundraising")
        add_consent(conn, other, "given")
        conn.execute(
            "INSERT INTO core.survey_response (person_id, survey_id, submitted_at, age_reported, answers, source,"
            " source_record_id) VALUES (%s, 'kDnP4xQe', now(), 35, %s, 'typeform', 'tok-1')",
            (person, Jsonb({"email": EMAIL, "score": 9})),
        )
        conn.execute(
            "INSERT INTO ops.quarantine (source, stream, source_record_id, run_id, reason, payload)"
            " VALUES ('moodle', 'users', '501', 'r', 'malformed email', %s)",
            (Jsonb({"id": 501, "email": EMAIL + "!"}),),
        )
        # Support tickets: one joined to the person, one from their email that the sync could not join (no
        # person id, only the email's hash), and someone else's.
        conn.execute(
            "INSERT INTO core.support_ticket (person_id, requester_source_id, requester_email_sha256, subject,"
            " status, about_referral, opened_at, changed_at, source, source_record_id) VALUES"
            " (%s, '1', %s, 'Erasmus cannot log in', 'open', false, %s, %s, 'zendesk', '9001'),"
            " (NULL, '2', %s, 'Reward missing, Erasmus T.', 'solved', true, %s, %s, 'zendesk', '9002'),"
            " (%s, '3', %s, 'Keeper asks about a receipt', 'open', false, %s, %s, 'zendesk', '9003')",
            (person, TICKET_EMAIL_HASH, RECEIVED, RECEIVED, TICKET_EMAIL_HASH, RECEIVED, RECEIVED, other,
             hashlib.sha256(b"keep.me@example.org").hexdigest(), RECEIVED, RECEIVED),
        )  # fmt: skip
    return {"person": person, "duplicate": duplicate, "other": other, "household": household}


def _occurrences(conn: psycopg.Connection, needle: str) -> dict[str, int]:
    """Where a string still appears, case-insensitively, in every table that holds personal data."""
    tables = [
        "raw.records", "core.person", "core.person_source_id", "core.household", "core.consent",
        "core.survey_response", "core.donation", "ops.quarantine", "core.support_ticket",
    ]  # fmt: skip
    found = {}
    for table in tables:
        count = conn.execute(
            f"SELECT count(*) FROM {table} t WHERE position(lower(%s) IN lower(to_jsonb(t)::text)) > 0",
            (needle,),
        ).fetchone()[0]
        if count:
            found[table] = count
    return found


def test_export_holds_everything_about_the_person_and_is_audited(warehouse_url: str, target) -> None:
    document = privacy.export_person(warehouse_url, target["person"], ACTOR)
    assert {p["person_id"] for p in document["people"]} == {target["person"], target["duplicate"]}
    assert EMAIL in {p["email"] for p in document["people"]}
    assert [
        (d["financial_transaction_id"], d["amount_minor"], d["currency"]) for d in document["donations"]
    ] == [("FT-9", 5000, "USD")]
    assert {c["purpose"] for c in document["consent"]} == {"course_messages", "fundraising"}
    assert {(r["source"], r["source_record_id"]) for r in document["raw_records"]} == {
        ("moodle", "501"), ("stripe", "ch_9"), ("typeform", "evt-1"),
    }  # fmt: skip
    assert document["households"][0]["street"] == "1 Main St"
    assert len(document["survey_responses"]) == 1 and len(document["outreach_decisions"]) == 4
    assert document["audit_references"], "the inserts of the person's rows are in the audit trail"
    # The personal fields of those audit events (outside the chain) come with the export.
    images = [image["fields"] for image in document["audit_personal_images"]]
    assert any(image.get("email") == EMAIL for image in images)
    assert "keep.me@example.org" not in json.dumps(document)
    # Their support tickets: the one joined to them and the one written from their email.
    assert {t["source_record_id"] for t in document["support_tickets"]} == {"9001", "9002"}
    with psycopg.connect(warehouse_url) as conn:
        event = conn.execute(
            "SELECT actor, details FROM audit.audit_events WHERE action = 'privacy_export' AND entity_id = %s",
            (target["person"],),
        ).fetchone()
    assert event[0] == "test-dpo" and event[1]["raw_records"] == 3


def test_erase_removes_personal_data_and_keeps_the_financial_trail(warehouse_url: str, target) -> None:
    with psycopg.connect(warehouse_url) as conn:
        assert _occurrences(conn, EMAIL)  # the test data really holds it everywhere
        before_other = conn.execute(
            "SELECT payload FROM raw.records WHERE source_record_id = '777'"
        ).fetchone()[0]

    result = privacy.erase_person(warehouse_url, target["person"], "DSR-2026-001", ACTOR)
    assert result.counts["people"] == 2 and result.counts["raw_records_redacted"] == 3
    assert result.counts["donations_kept"] == 1

    with psycopg.connect(warehouse_url) as conn:
        for needle in (EMAIL, "erasmus.old@example.org", "Erasmus", "555 0100", "1 Main St", "Springfield"):
            assert _occurrences(conn, needle) == {}, needle
        # The financial trail, exactly.
        donation = conn.execute(
            "SELECT financial_transaction_id, amount_minor, currency, received_at, person_id::text, source_record_id"
            " FROM core.donation"
        ).fetchone()
        assert donation == ("FT-9", 5000, "USD", RECEIVED, target["person"], "ch_9")
        charge = conn.execute("SELECT payload FROM raw.records WHERE source_record_id = 'ch_9'").fetchone()[0]
        assert (charge["id"], charge["amount"], charge["currency"], charge["created"]) == (
            "ch_9",
            5000,
            "usd",
            1741064767,
        )
        assert charge["metadata"]["financial_transaction_id"] == "FT-9"
        assert charge["balance_transaction"] == "txn_ch_9"
        assert charge["billing_details"]["email"] is None
        assert charge["_erased"]["erasure_id"] == result.counts["erasure_id"]
        # Someone else's data is untouched.
        assert (
            conn.execute("SELECT payload FROM raw.records WHERE source_record_id = '777'").fetchone()[0]
            == before_other
        )
        assert "keep.me@example.org" in {r[0] for r in conn.execute("SELECT email FROM core.person")}
        tickets = dict(conn.execute("SELECT source_record_id, subject FROM core.support_ticket").fetchall())
        assert tickets == {"9001": None, "9002": None, "9003": "Keeper asks about a receipt"}
        # The person id stays (the gift points to it), marked erased, and is never on a list again.
        assert conn.execute(
            "SELECT erased_at IS NOT NULL, email FROM core.person WHERE person_id = %s", (target["person"],)
        ).fetchone() == (True, None)
        assert target["person"] not in eligible(conn) and target["other"] in eligible(conn)
        # Audited, and the chain still holds.
        details = conn.execute(
            "SELECT details FROM audit.audit_events WHERE action = 'privacy_erase' AND entity_id = %s",
            (target["person"],),
        ).fetchone()[0]
        assert details["reason"] == "DSR-2026-001"
        assert audit.verify(conn).ok


def test_after_erasure_raw_is_append_only_again_and_a_resync_cannot_refill_the_person(
    warehouse_url: str, target
) -> None:
    privacy.erase_person(warehouse_url, target["person"], "DSR-2", ACTOR)
    with psycopg.connect(warehouse_url) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute("UPDATE raw.records SET payload = '{}' WHERE source_record_id = '777'")
        conn.rollback()
        # Even the redaction switch does not open raw for anything but a redacted payload.
        conn.execute("SELECT set_config('cdp.raw_redaction', 'on', true)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute("UPDATE raw.records SET payload = '{\"forged\": 1}' WHERE source_record_id = '777'")
        conn.rollback()
        conn.execute(
            "UPDATE core.person SET email = %s, given_name = 'Erasmus', date_of_birth = '1990-01-01'"
            " WHERE person_id = %s",
            (EMAIL, target["person"]),
        )
        assert conn.execute(
            "SELECT email, given_name, date_of_birth FROM core.person WHERE person_id = %s",
            (target["person"],),
        ).fetchone() == (None, None, None)


def test_erase_needs_a_reason_and_an_existing_person(warehouse_url: str, target) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        privacy.erase_person(warehouse_url, target["person"], " ", ACTOR)
    with pytest.raises(privacy.PersonNotFound):
        privacy.erase_person(warehouse_url, "00000000-0000-0000-0000-000000000000", "DSR-3", ACTOR)
    with pytest.raises(privacy.PersonNotFound):
        privacy.export_person(warehouse_url, "not-a-uuid", ACTOR)


def test_cli_export_and_erase(warehouse_url: str, target, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CDP_WAREHOUSE_URL", warehouse_url)
    output = tmp_path / "export.json"
    assert main(["privacy", "--actor", "dpo", "export", target["person"], "--output", str(output)]) == 0
    assert json.loads(output.read_text())["people"][0]["person_id"] in (target["person"], target["duplicate"])
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    printed = capsys.readouterr().out
    assert "3 raw records" in printed and EMAIL not in printed

    assert main(["privacy", "erase", target["person"], "--reason", "DSR-4"]) == 2  # no --yes: nothing happens
    with psycopg.connect(warehouse_url) as conn:
        assert (
            conn.execute(
                "SELECT erased_at FROM core.person WHERE person_id = %s", (target["person"],)
            ).fetchone()[0]
            is None
        )
    assert main(["privacy", "erase", target["person"], "--reason", "DSR-4", "--yes"]) == 0
    assert "people 2" in capsys.readouterr().out
    assert main(["privacy", "export", "00000000-0000-0000-0000-000000000000", "--output", "-"]) == 4


# --- erasure versus the hash-chained audit trail ------------------------------------------------------------

TEXT_TYPES = ("text", "character varying", "character", "jsonb", "json", "name")


def _everywhere(conn: psycopg.Connection, needle: str) -> dict[str, int]:
    """Where a string appears, case-insensitively, in any text or JSON column of any table of any schema."""
    columns = conn.execute(
        "SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns c"
        " JOIN information_schema.tables t ON (t.table_schema, t.table_name) = (c.table_schema, c.table_name)"
        " WHERE t.table_type = 'BASE TABLE' AND c.data_type = ANY(%s)"
        " AND c.table_schema NOT IN ('pg_catalog', 'information_schema') AND c.table_schema NOT LIKE 'pg_%%'",
        (list(TEXT_TYPES),),
    ).fetchall()
    found = {}
    for schema, table, column in columns:
        query = sql.SQL("SELECT count(*) FROM {}.{} WHERE position(lower(%s) IN lower({}::text)) > 0").format(
            sql.Identifier(schema), sql.Identifier(table), sql.Identifier(column)
        )
        count = conn.execute(query, (needle,)).fetchone()[0]
        if count:
            found[f"{schema}.{table}.{column}"] = count
    return found


def _edit_by_hand(conn: psycopg.Connection, person: str) -> None:
    """A person typing in psql, personal data as literals in the statement (which the trail keeps)."""
    conn.execute(
        f"UPDATE core.person SET phone = '+1 555 0100', email = '{EMAIL}' WHERE person_id = '{person}'"
    )


def _merged_by_the_dedupe(conn: psycopg.Connection, person: str) -> None:
    """The duplicate of the fixture, merged into the person as the dedupe records it: a reviewed pair with the
    reviewer's note, and the merge with both person rows as before-images."""
    duplicate = str(
        conn.execute("SELECT person_id FROM core.person WHERE merged_into = %s", (person,)).fetchone()[0]
    )
    low, high = sorted((person, duplicate))
    pair = conn.execute(
        "INSERT INTO ops.identity_pair (person_low, person_high, first_run_id, last_run_id, score, match_weight,"
        " class, status) VALUES (%s, %s, 'r', 'r', 0.8, 9.5, 'possible_match', 'queued') RETURNING pair_id",
        (low, high),
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO ops.identity_decision (pair_id, person_low, person_high, decision, reviewer, note)"
        " VALUES (%s, %s, %s, 'same', 'ops', 'Erasmus confirmed on the phone that both are him')",
        (pair, low, high),
    )
    conn.execute(
        "INSERT INTO ops.identity_merge (pair_id, survivor_id, absorbed_id, reason, survivor_before,"
        " absorbed_before) SELECT %s, s.person_id, a.person_id, 'review', to_jsonb(s), to_jsonb(a)"
        " FROM core.person s, core.person a WHERE s.person_id = %s AND a.person_id = %s",
        (pair, person, duplicate),
    )


def _in_the_migration(url: str, person: str, folder: Path) -> None:
    """The person as the migration met them: in the legacy exports (landed, cleaned, loaded, and a CRM row
    about them queued for review with a broken email), the referral spreadsheet and the CRM push's tables."""
    from cdp.migration import legacy_cleanup, legacy_formats, legacy_import, legacy_profile
    from cdp.migration.legacy_load import load_core

    folder.mkdir()
    learners = legacy_formats.EXPORTS["lms_learners"][1]
    contacts = legacy_formats.EXPORTS["crm_contacts"][1]
    (folder / "lms_learners.csv").write_text(
        ",".join(learners) + "\r\n"
        + f"1001,Erasmus,Target, {EMAIL} ,+1 555 0100,,2023/04/05\r\n"
        + "1002,Keeper,Doe,keep.me@example.org,,,2023-04-06\r\n"
    )  # fmt: skip
    (folder / "crm_contacts.csv").write_text(
        ",".join(contacts) + "\r\n"
        + f"0030001,1001,Erasmus,Target,{EMAIL},+1 555 0100,2023-05-01\r\n"
        + "0030002,1001,Erasmus,Target,erasmus.target at example.org,,2023-05-02\r\n"
    )  # fmt: skip
    files = legacy_import.import_exports(url, ACTOR, "legacy-1", folder)
    legacy_profile.profile(url, ACTOR, "legacy-1", files)
    legacy_cleanup.cleanup(url, ACTOR, "legacy-1", files)
    load_core(url, ACTOR, "legacy-1", files)
    with psycopg.connect(url) as conn:
        # Loaded onto the person by the exact key, and a row about them waits for review.
        assert conn.execute(
            "SELECT person_id::text FROM core.person_source_id"
            " WHERE source = 'legacy_lms' AND source_record_id = '1001'"
        ).fetchone() == (person,)
        assert (
            conn.execute(
                "SELECT count(*) FROM ops.legacy_review WHERE payload::text LIKE '%%erasmus.target at%%'"
            ).fetchone()[0]
            > 0
        )
        conn.execute(
            "INSERT INTO ops.referral_legacy (legacy_ref, file_sha256, row_number, referrer_name, referrer_email,"
            " referred_name, referred_email, referred_on, imported_run_id) VALUES ('R1', repeat('a', 64), 1,"
            " 'Keeper Doe', 'keep.me@example.org', 'Erasmus Target', %s, '2023-04-01', 'r')",
            (EMAIL,),
        )
        email_hash = push.value_hash(EMAIL)
        conn.execute("INSERT INTO ops.crm_push_run (run_id, dry_run) VALUES ('push-1', false)")
        conn.execute(
            "INSERT INTO ops.crm_push_state (person_id, external_id, crm_id, field_hashes) VALUES (%s, %s, '003X',"
            " jsonb_build_object('Email', %s::text, 'CDP_Fundraising_Consent__c', 'h'))",
            (person, person, email_hash),
        )
        conn.execute(
            "INSERT INTO ops.crm_push_change (run_id, person_id, field, change, crm_hash, new_hash)"
            " VALUES ('push-1', %s, 'Email', 'update', %s, %s)",
            (person, email_hash, email_hash),
        )
        conn.execute(
            "INSERT INTO ops.crm_push_error (person_id, error_code, message, first_run_id, last_run_id)"
            " VALUES (%s, 'DUPLICATES_DETECTED', %s, 'push-1', 'push-1')",
            (person, f"a Contact with Email {EMAIL.upper()} exists"),
        )


def test_after_erasure_the_person_is_nowhere_in_any_schema_and_the_chain_still_verifies(
    warehouse_url: str, target, tmp_path: Path
) -> None:
    born = None
    _in_the_migration(warehouse_url, target["person"], tmp_path / "legacy")
    exported = privacy.export_person(warehouse_url, target["person"], ACTOR)["migration_records"]
    assert {k for k, v in exported.items() if v} == {
        "legacy_raw_records", "legacy_clean_records", "legacy_reviews", "legacy_referrals", "crm_push_state",
        "crm_push_errors",
    }  # fmt: skip
    with psycopg.connect(warehouse_url) as conn:
        _edit_by_hand(conn, target["person"])
        _merged_by_the_dedupe(conn, target["person"])
        born = str(
            conn.execute(
                "SELECT date_of_birth FROM core.person WHERE person_id = %s", (target["person"],)
            ).fetchone()[0]
        )
        everywhere = _everywhere(conn, EMAIL)
        # The search sees what it must find: the data is in core, raw and the audit images ...
        assert {"core.person.email", "raw.records.payload", "audit.personal_image.fields"} <= set(everywhere)
        # A ticket requester the sync could not join is known by the email's hash only, also in the images.
        assert {"core.support_ticket.requester_email_sha256", "audit.personal_image.fields"} <= set(
            _everywhere(conn, TICKET_EMAIL_HASH)
        )
        # The search sees what it must find: the data is in core, raw, the migration's tables and the
        # audit images ...
        assert {
            "core.person.email", "raw.records.payload", "audit.personal_image.fields",
            "ops.legacy_clean_record.values", "ops.referral_legacy.referred_email", "ops.crm_push_error.message",
        } <= set(everywhere)  # fmt: skip
        assert "ops.legacy_review.payload" in _everywhere(conn, "erasmus.target at example.org")
        # ... and in the dedupe's records: the merge's before-images and a reviewer's note.
        assert {"ops.identity_merge.survivor_before", "ops.identity_merge.absorbed_before"} <= set(
            _everywhere(conn, "erasmus.old@example.org")
        ) | set(everywhere)
        assert "ops.identity_decision.note" in _everywhere(conn, "Erasmus")
        hashes = _everywhere(conn, push.value_hash(EMAIL))
        assert {"ops.crm_push_state.field_hashes", "ops.crm_push_change.crm_hash"} <= set(hashes)
        # ... but never in the hash-chained rows themselves.
        assert not [column for column in everywhere if column.startswith("audit.audit_events")]
        assert _everywhere(conn, "keep.me@example.org")  # someone else, kept below

    result = privacy.erase_person(warehouse_url, target["person"], "DSR-2026-007", ACTOR)
    assert result.counts["audit_images_erased"] > 0

    with psycopg.connect(warehouse_url) as conn:
        needles = (
            EMAIL,
            "erasmus.old@example.org",
            "Erasmus",
            "+1 555 0100",
            "1 Main St",
            "Springfield",
            born,
        )
        for needle in (*needles, "erasmus.target at example.org", push.value_hash(EMAIL)):
            assert _everywhere(conn, needle) == {}, needle
        # The tickets' hash of the email is gone from the tickets and their audit images; what remains is the
        # erasure's own pseudonym of an email-keyed key ('erased:' || the same sha256, by 0005's design): a
        # source id, and the legacy referral sheet's email column (0014 keeps the row, pseudonymised).
        assert set(_everywhere(conn, TICKET_EMAIL_HASH)) == {
            "core.person_source_id.source_record_id",
            "ops.referral_legacy.referred_email",
        }
        # The other person of the same exports and spreadsheet keeps their rows.
        assert {"ops.legacy_clean_record.values", "ops.referral_legacy.referrer_email"} <= set(
            _everywhere(conn, "keep.me@example.org")
        )
        assert audit.verify(conn).ok, audit.verify(conn).summary()
        # Auditors still see that the person's row was changed, when, by which role, to which person id.
        event = conn.execute(
            "SELECT occurred_at, db_role, before, after FROM audit.audit_events"
            " WHERE entity_type = 'core.person' AND action = 'update' AND entity_id = %s ORDER BY seq LIMIT 1",
            (target["person"],),
        ).fetchone()
        assert event[0] is not None and event[1] == "postgres"
        assert event[3][0]["person_id"] == target["person"]
        restored = conn.execute("SELECT audit.with_personal_fields(%s)", (Jsonb(event[3]),)).fetchone()[0]
        assert restored[0]["_personal_erased"] == result.counts["erasure_id"]
        assert "email" not in restored[0]
        # Someone else's images are untouched and still readable.
        assert "audit.personal_image.fields" in _everywhere(conn, "keep.me@example.org")


def _image_of(conn: psycopg.Connection, person: str) -> str:
    return str(
        conn.execute(
            "SELECT image_id FROM audit.personal_image WHERE subject_id = %s AND fields IS NOT NULL"
            " ORDER BY recorded_at LIMIT 1",
            (person,),
        ).fetchone()[0]
    )


def _tampered(url: str, statement: str, params: tuple) -> audit.VerifyReport:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # a superuser switching triggers off
        conn.execute(statement, params)
    with psycopg.connect(url) as conn:
        return audit.verify(conn)


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        (
            'UPDATE audit.personal_image SET fields = fields || \'{"email": "x@y.org"}\' WHERE image_id = %s',
            "does not match its seal",
        ),
        (
            "UPDATE audit.personal_image SET fields = NULL, salt = NULL, erased_at = now(),"
            " erasure_id = 'erasure:made-up' WHERE image_id = %s",
            "blanked without an erasure",
        ),
        ("DELETE FROM audit.personal_image WHERE image_id = %s", "differ from the digest"),
        (
            "UPDATE audit.personal_image SET seal = repeat('0', 64), salt = 's',"
            ' fields = \'{"email": "x@y.org"}\' WHERE image_id = %s',
            "does not match its seal",
        ),
    ],
    ids=["edited", "blanked-without-erasure", "deleted", "resealed"],
)
def test_verify_catches_an_edited_removed_or_unlawfully_blanked_image(
    warehouse_url: str, target, statement: str, problem: str
) -> None:
    with psycopg.connect(warehouse_url) as conn:
        assert audit.verify(conn).ok
        image = _image_of(conn, target["other"])
    report = _tampered(warehouse_url, statement, (image,))
    assert not report.ok and problem in report.problem, report.summary()


def test_a_real_erasure_cannot_cover_blanking_someone_elses_images(warehouse_url: str, target) -> None:
    result = privacy.erase_person(warehouse_url, target["person"], "DSR-8", ACTOR)
    with psycopg.connect(warehouse_url) as conn:
        image = _image_of(conn, target["other"])
    report = _tampered(
        warehouse_url,
        "UPDATE audit.personal_image SET fields = NULL, salt = NULL, erased_at = now(), erasure_id = %s"
        " WHERE image_id = %s",
        (result.counts["erasure_id"], image),
    )
    assert not report.ok and "blanked without an erasure" in report.problem


def test_the_images_are_append_only_except_for_an_erasure(warehouse_url: str, target) -> None:
    with psycopg.connect(warehouse_url) as conn:
        image = _image_of(conn, target["other"])
        for statement in (
            "UPDATE audit.personal_image SET fields = '{}' WHERE image_id = %s",
            "DELETE FROM audit.personal_image WHERE image_id = %s",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement, (image,))
            conn.rollback()
        # The erasure switch opens it only for blanking, never for rewriting.
        conn.execute("SELECT set_config('cdp.audit_image_erasure', 'on', true)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute(
                'UPDATE audit.personal_image SET fields = \'{"email": "forged@x.org"}\' WHERE image_id = %s',
                (image,),
            )
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute("TRUNCATE audit.personal_image")
        conn.rollback()
        # Application roles add images (through the change trigger) but read and change none.
        for role in ("cdp_loader", "cdp_editor", "cdp_viewer", "cdp_finance"):
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT fields FROM audit.personal_image LIMIT 1")
            conn.rollback()
        conn.execute("SET ROLE cdp_admin")
        assert conn.execute("SELECT count(*) FROM audit.personal_image").fetchone()[0] > 0
        conn.rollback()


def test_every_personal_looking_audited_column_is_kept_out_of_the_chain(warehouse_url: str) -> None:
    from cdp.privacy import catalog

    with psycopg.connect(warehouse_url) as conn:
        assert catalog.unregistered_personal_columns(conn) == []
        # Breaking the rule is caught: a new audited table with an unregistered email column.
        conn.execute("CREATE TABLE core.t_newsletter_signup (signup_id int PRIMARY KEY, email text)")
        conn.execute("SELECT audit.track_changes('core.t_newsletter_signup', 'signup_id')")
        assert catalog.unregistered_personal_columns(conn) == [("core.t_newsletter_signup", "email")]
        conn.execute("INSERT INTO core.t_newsletter_signup VALUES (1, 'in.clear@example.org')")
        assert _everywhere(conn, "in.clear@example.org").keys() >= {"audit.audit_events.after"}
        conn.rollback()


def test_export_holds_the_persons_volunteer_records_shifts_and_hours(warehouse_url: str, target) -> None:
    """The volunteer platform (phase 4) came after the export was written: its rows must be in it too."""
    person = target["person"]
    with psycopg.connect(warehouse_url) as conn:
        volunteer = conn.execute(
            "INSERT INTO core.volunteer (person_id, status, registered_at, source, source_record_id)"
            " VALUES (%s, 'active', now(), 'galaxy', 'vol-1') RETURNING volunteer_id",
            (person,),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO core.volunteer_shift (volunteer_id, person_id, need_id, shift_id, starts_at, ends_at,"
            " status, source, source_record_id)"
            " VALUES (%s, %s, 'need-1', 'shift-1', now(), now() + interval '2 hours', 'active', 'galaxy', 'r-1')",
            (volunteer, person),
        )
        conn.execute(
            "INSERT INTO core.volunteer_hours (volunteer_id, person_id, served_on, minutes, status, source,"
            " source_record_id) VALUES (%s, %s, current_date, 135, 'approved', 'galaxy', 'h-1')",
            (volunteer, person),
        )

    document = privacy.export_person(warehouse_url, person, ACTOR)

    assert [row["source_record_id"] for row in document["volunteers"]] == ["vol-1"]
    assert [row["shift_id"] for row in document["volunteer_shifts"]] == ["shift-1"]
    assert [row["minutes"] for row in document["volunteer_hours"]] == [135]


def test_cli_export_never_writes_through_a_link_or_over_a_file(
    warehouse_url: str, target, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("CDP_WAREHOUSE_URL", warehouse_url)
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("someone else's file\n")
    link = tmp_path / "export.json"
    link.symlink_to(elsewhere)
    existing = tmp_path / "existing.json"
    existing.write_text("old\n")
    existing.chmod(0o644)

    assert main(["privacy", "export", target["person"], "--output", str(link)]) == 2
    assert main(["privacy", "export", target["person"], "--output", str(existing)]) == 2

    assert elsewhere.read_text() == "someone else's file\n"
    assert existing.read_text() == "old\n"
    assert "exists" in capsys.readouterr().err
    fresh = tmp_path / "fresh.json"
    old_umask = os.umask(0)  # the mode must not depend on the caller's umask
    try:
        assert main(["privacy", "export", target["person"], "--output", str(fresh)]) == 0
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
