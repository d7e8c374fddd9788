"""Every path to personal data, tried through real logins: what a role may not read in core it finds nowhere
else in the warehouse (review queue, merge before-images, quarantine payloads, rejected webhook bodies, the
audit trail's row images).

The sweep reads, as each login, every column of every table and view it holds SELECT on, and looks for the
seeded values of core columns that role may not read there."""

from __future__ import annotations

import json

import psycopg
import pytest
from privacy_seed import add_person, readable_text

# A values of core columns, seeded once, each unique enough to be found anywhere it was copied to.
EMAIL = "alice.secret-7731@example.org"
PHONE = "+15550107731"
BIRTH_DATE = "1988-07-31"
GIVEN_NAME = "Alicesecret"
CONSENT_RECORD = "consent-secret-7731"
# value -> the core column whose readers may see it wherever it was copied.
SECRETS = {
    EMAIL: ("core.person", "email"),
    PHONE: ("core.person", "phone"),
    BIRTH_DATE: ("core.person", "date_of_birth"),
    GIVEN_NAME: ("core.person", "given_name"),
    CONSENT_RECORD: ("core.consent", "source_record_id"),
}
STAFF_WITHOUT_CONTACT = ("cdp_viewer", "cdp_editor", "cdp_finance")


@pytest.fixture
def copies_of_alice(warehouse_url: str) -> dict[str, str]:
    """Alice in core, and everywhere the pipeline copies her: a queued pair, a merge, quarantine, a rejected
    webhook, the audit trail (her consent statement)."""
    with psycopg.connect(warehouse_url) as conn:
        alice = add_person(conn, born=None, email=EMAIL, given_name=GIVEN_NAME)
        conn.execute(
            "UPDATE core.person SET phone = %s, phone_e164 = %s, date_of_birth = %s WHERE person_id = %s",
            (PHONE, PHONE, BIRTH_DATE, alice),
        )
        # The registration form keys people by their email.
        conn.execute(
            "INSERT INTO core.person_source_id (source, source_record_id, person_id) VALUES ('registration', %s, %s)",
            (EMAIL, alice),
        )
        twin = add_person(conn, born=None, email=EMAIL.upper(), given_name="Alicia")
        low, high = sorted([alice, twin])
        conn.execute(
            "INSERT INTO ops.identity_pair (person_low, person_high, first_run_id, last_run_id, score,"
            " match_weight, class, status) VALUES (%s, %s, 'r1', 'r1', 0.8, 4.2, 'possible_match', 'queued')",
            (low, high),
        )
        someone = add_person(conn, born=None)
        image = {"person_id": alice, "email": EMAIL, "phone": PHONE, "date_of_birth": BIRTH_DATE}
        conn.execute(
            "INSERT INTO ops.identity_merge (survivor_id, absorbed_id, reason, survivor_before, absorbed_before)"
            " VALUES (%s, %s, 'review', %s::jsonb, %s::jsonb)",
            (someone, alice, json.dumps({"person_id": someone}), json.dumps(image)),
        )
        conn.execute(
            "INSERT INTO ops.quarantine (source, stream, source_record_id, run_id, reason, payload)"
            " VALUES ('moodle', 'users', '77', 'r1', 'missing_required: idnumber', %s::jsonb)",
            (json.dumps({"id": 77, "email": EMAIL, "firstname": GIVEN_NAME, "phone1": PHONE}),),
        )
        conn.execute(
            "INSERT INTO ops.webhook_rejection (source, status_code, reason, content_type, body_bytes, body_sha256,"
            " body) VALUES ('registration', 401, 'bad_signature', 'application/json', 60, 'x', %s)",
            (json.dumps({"email": EMAIL, "dob": BIRTH_DATE}),),
        )
        conn.execute(
            "INSERT INTO core.consent (person_id, purpose, status, lawful_basis, source, source_record_id, stated_at)"
            " VALUES (%s, 'fundraising', 'withdrawn', 'consent', 'crm', %s, now())",
            (alice, CONSENT_RECORD),
        )
    return {"alice": alice, "twin": twin}


def _may_read(conn: psycopg.Connection, table: str, column: str) -> bool:
    # By oid: naming the table would need usage on its schema, which outreach does not have.
    schema, name = table.split(".")
    return conn.execute(
        "SELECT has_column_privilege(c.oid, a.attnum, 'SELECT') FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid"
        " WHERE n.nspname = %s AND c.relname = %s AND a.attname = %s",
        (schema, name, column),
    ).fetchone()[0]


def found_where_denied(url: str, partner: str | None = None) -> dict[str, list[str]]:
    """As the login of `url` (acting for `partner`, if given): every relation whose readable columns hold a
    value of a core column the login may not read in core, with the values found."""
    found: dict[str, list[str]] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        if partner:
            conn.execute("SELECT set_config('cdp.partner_organization_id', %s, false)", (partner,))
        hidden = [value for value, (table, column) in SECRETS.items() if not _may_read(conn, table, column)]
        for relation, text in readable_text(conn).items():
            leaked = [value for value in hidden if value in text or value.upper() in text]
            if leaked:
                found[relation] = leaked
    return found


@pytest.mark.parametrize("role", [*STAFF_WITHOUT_CONTACT, "cdp_partner", "cdp_outreach"])
def test_no_role_finds_a_copy_of_what_core_denies_it(
    warehouse_url: str, copies_of_alice, logins, role: str
) -> None:
    organization = None
    if role == "cdp_partner":
        with psycopg.connect(warehouse_url) as conn:
            organization = conn.execute(
                "INSERT INTO core.organization (name) VALUES ('Partner') RETURNING organization_id::text"
            ).fetchone()[0]
    assert found_where_denied(logins(role, organization), partner=organization) == {}


def test_the_sweep_finds_a_copy_granted_too_widely(warehouse_url: str, copies_of_alice, logins) -> None:
    """Breaking the rule is caught: the quarantine's payloads granted to the viewer again."""
    url = logins("cdp_viewer")
    with psycopg.connect(warehouse_url) as conn:
        conn.execute("GRANT SELECT ON ops.quarantine TO cdp_viewer")
    assert found_where_denied(url) == {"ops.quarantine": [EMAIL, PHONE, GIVEN_NAME]}


def test_admin_still_reads_every_copy(copies_of_alice, logins) -> None:
    with psycopg.connect(logins("cdp_admin")) as conn:
        assert conn.execute("SELECT payload ->> 'email' FROM ops.quarantine").fetchone()[0] == EMAIL
        assert EMAIL in conn.execute("SELECT body FROM ops.webhook_rejection").fetchone()[0]
        assert (
            conn.execute("SELECT absorbed_before ->> 'email' FROM ops.identity_merge").fetchone()[0] == EMAIL
        )
        # the pair's sides are ordered by person id (random here): alice is on either side
        pair = conn.execute("SELECT left_email, right_email FROM ops.identity_review_queue").fetchone()
        assert set(pair) == {EMAIL, EMAIL.upper()}
        consent_images = conn.execute(
            "SELECT after FROM audit.readable_events WHERE entity_type = 'core.consent'"
        ).fetchone()[0]
        assert consent_images[0]["source_record_id"] == CONSENT_RECORD


def test_the_review_queue_masks_what_the_reader_may_not_read_in_core(copies_of_alice, logins) -> None:
    columns = "left_given_name, left_email, left_phone, left_date_of_birth, right_given_name, same_email"
    with psycopg.connect(logins("cdp_viewer")) as conn:
        assert conn.execute(f"SELECT {columns} FROM ops.identity_review_queue").fetchall() == [
            (None, None, None, None, None, True)
        ]
    with psycopg.connect(logins("cdp_editor")) as conn:
        # Editors read names in core.person, so they see them here too; contact details and birth dates not.
        row = conn.execute(f"SELECT {columns} FROM ops.identity_review_queue").fetchone()
        assert {row[0], row[4]} == {GIVEN_NAME, "Alicia"}
        assert row[1:4] == (None, None, None)
        assert row[5] is True


COPIES = [
    "SELECT payload FROM ops.quarantine",
    "SELECT body FROM ops.webhook_rejection",
    "SELECT survivor_before, absorbed_before FROM ops.identity_merge",
    "SELECT unmerge_details FROM ops.identity_merge",
    "SELECT after FROM audit.audit_events",
    "SELECT before FROM audit.audit_events",
    "SELECT details FROM audit.audit_events",
    "SELECT * FROM audit.audit_events",
]


@pytest.mark.parametrize("role", STAFF_WITHOUT_CONTACT)
def test_staff_are_refused_the_copies_themselves(copies_of_alice, logins, role: str) -> None:
    outcomes = {}
    with psycopg.connect(logins(role), autocommit=True) as conn:
        for statement in COPIES:
            try:
                conn.execute(statement)
                outcomes[statement] = "read"
            except psycopg.errors.InsufficientPrivilege:
                outcomes[statement] = "refused"
    assert outcomes == dict.fromkeys(COPIES, "refused")


@pytest.mark.parametrize("role", STAFF_WITHOUT_CONTACT)
def test_staff_keep_what_they_work_with(copies_of_alice, logins, role: str) -> None:
    with psycopg.connect(logins(role)) as conn:
        assert conn.execute("SELECT reason FROM ops.quarantine").fetchall() == [
            ("missing_required: idnumber",)
        ]
        assert conn.execute("SELECT reason, body_bytes FROM ops.webhook_rejection").fetchall() == [
            ("bad_signature", 60)
        ]
        assert conn.execute("SELECT count(*) FROM audit.audit_events").fetchone()[0] > 0
        # The consent statement's event is there, its image cut to what the role reads of core.consent
        # (nothing); a person's image keeps the columns the role reads in core.person.
        consent = conn.execute(
            "SELECT action, after FROM audit.readable_events WHERE entity_type = 'core.consent'"
        ).fetchall()
        assert consent == [("insert", [{}])]
        people = conn.execute(
            "SELECT after FROM audit.readable_events WHERE entity_type = 'core.person' AND action = 'insert'"
        ).fetchall()
        keys = {key for (images,) in people for image in images for key in image}
        assert "person_id" in keys and "country" in keys
        assert not keys & {"email", "phone", "date_of_birth", "_personal"}


def test_application_events_show_their_images_only_to_readers_of_the_whole_chain(
    warehouse_url: str, logins
) -> None:
    with psycopg.connect(warehouse_url) as conn:
        conn.execute(
            "SELECT audit.record_event('review_decision', 'ops.identity_pair', '1', %s::jsonb)",
            (json.dumps({"reviewer": "grace", "note": EMAIL}),),
        )
    with psycopg.connect(logins("cdp_viewer")) as conn:
        assert conn.execute(
            "SELECT action, details, before, after FROM audit.readable_events WHERE action = 'review_decision'"
        ).fetchall() == [("review_decision", None, None, None)]
    with psycopg.connect(logins("cdp_admin")) as conn:
        assert (
            conn.execute(
                "SELECT details ->> 'note' FROM audit.readable_events WHERE action = 'review_decision'"
            ).fetchone()[0]
            == EMAIL
        )
