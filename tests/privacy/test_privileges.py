"""The privilege matrix, checked with the real roles (SET ROLE): every allowed operation succeeds, every
forbidden one fails with a permission error. Plus the catalog rules no role may break."""

from __future__ import annotations

import psycopg
import pytest
from privacy_seed import add_consent, add_person, years_ago

from cdp.privacy import catalog

ROLES = ("cdp_loader", "cdp_viewer", "cdp_editor", "cdp_admin", "cdp_finance", "cdp_partner", "cdp_outreach")
EVERY_STAFF = {"cdp_loader", "cdp_viewer", "cdp_editor", "cdp_admin", "cdp_finance"}

# operation: (statement, roles allowed). Statements use the ids seeded below.
MATRIX: dict[str, tuple[str, set[str]]] = {
    "read people (no contact)": ("SELECT person_id, country FROM core.person", EVERY_STAFF),
    "read contact details": ("SELECT email, phone FROM core.person", {"cdp_admin", "cdp_loader"}),
    "read consent statements": ("SELECT status FROM core.consent", {"cdp_admin", "cdp_loader"}),
    "read donations": ("SELECT amount_minor, currency FROM core.donation", EVERY_STAFF),
    "change a donation": (
        "UPDATE core.donation SET campaign = 'corrected' WHERE donation_id = %(donation)s",
        {"cdp_loader"},  # finance and admin only through an approved correction (issue 15, revision 0017)
    ),
    "add a donation": (
        "INSERT INTO core.donation (financial_transaction_id, amount_minor, currency, received_at, source,"
        " source_record_id) VALUES ('FT-NEW', 100, 'USD', now(), 'stripe', 'ch_new')",
        {"cdp_admin", "cdp_loader"},
    ),
    # Nobody deletes a gift, admin included: the financial trail stays, and a wrong gift is put right by a
    # correction that finance approves (0004's guard on core.donation).
    "delete a donation": ("DELETE FROM core.donation WHERE donation_id = %(donation)s", set()),
    "delete a person": ("DELETE FROM core.person WHERE person_id = %(loner)s", {"cdp_admin"}),
    "delete consent history": ("DELETE FROM core.consent", {"cdp_admin"}),
    "change an enrollment": (
        "UPDATE core.enrollment SET status = 'completed' WHERE enrollment_id = %(enrollment)s",
        {"cdp_editor", "cdp_admin", "cdp_loader"},
    ),
    "record consent": (
        "INSERT INTO core.consent (person_id, purpose, status, source, source_record_id, stated_at)"
        " VALUES (%(adult)s, 'fundraising', 'given', 'crm', 'x1', now())",
        {"cdp_admin", "cdp_loader"},
    ),
    "read raw payloads": ("SELECT payload FROM raw.records", {"cdp_admin", "cdp_loader"}),
    "write raw": (
        "INSERT INTO raw.records (source, stream, run_id, payload) VALUES ('moodle', 'users', 'r', '{}')",
        {"cdp_loader"},
    ),
    "edit raw": ("UPDATE raw.records SET payload = '{}'", set()),
    "change the audit trail": ("UPDATE audit.audit_events SET action = 'nothing'", set()),
    "delete from the audit trail": ("DELETE FROM audit.audit_events", set()),
    "export a person": ("SELECT privacy.export_person(%(adult)s)", {"cdp_admin"}),
    "erase a person": ("SELECT privacy.erase_person(%(loner)s, 'DSR-1')", {"cdp_admin"}),
    "create a login": (
        "SELECT privacy.create_login('t_matrix_login', 'cdp_viewer', 'a-long-password')",
        {"cdp_admin"},
    ),
    "read the outreach list": ("SELECT email FROM mart.outreach_eligible", {"cdp_outreach", "cdp_admin"}),
    "read outreach decisions": (
        "SELECT refusal_reason FROM mart.outreach_decision",
        {"cdp_viewer", "cdp_editor", "cdp_admin", "cdp_finance"},
    ),
    "read ops": ("SELECT count(*) FROM ops.quarantine", EVERY_STAFF),
    "switch triggers off": ("ALTER TABLE core.person DISABLE TRIGGER ALL", set()),
    "switch row-level security off": ("ALTER TABLE core.enrollment NO FORCE ROW LEVEL SECURITY", set()),
    "silence triggers for the session": ("SET session_replication_role = replica", set()),
    "change the age rules": (
        "UPDATE core.consent_age_rule SET age_of_consent = 13 WHERE jurisdiction = 'DE'",
        {"cdp_admin"},
    ),
}


@pytest.fixture
def seeded(warehouse_url: str) -> dict[str, str]:
    with psycopg.connect(warehouse_url) as conn:
        adult = add_person(conn, born=years_ago(30))
        loner = add_person(conn, born=years_ago(40))
        add_consent(conn, adult, "given")
        organization = conn.execute(
            "INSERT INTO core.organization (name) VALUES ('Partner') RETURNING organization_id"
        ).fetchone()[0]
        course = conn.execute(
            "INSERT INTO core.course (source, source_record_id, title)"
            " VALUES ('moodle', '7', 'Python') RETURNING course_id"
        ).fetchone()[0]
        enrollment = conn.execute(
            "INSERT INTO core.enrollment (person_id, course_id, organization_id, enrolled_at, source, source_record_id)"
            " VALUES (%s, %s, %s, now(), 'moodle', 'e1') RETURNING enrollment_id",
            (adult, course, organization),
        ).fetchone()[0]
        donation = conn.execute(
            "INSERT INTO core.donation (financial_transaction_id, person_id, amount_minor, currency, received_at,"
            " source, source_record_id) VALUES ('FT-1', %s, 2500, 'EUR', now(), 'stripe', 'ch_1')"
            " RETURNING donation_id",
            (adult,),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO raw.records (source, stream, source_record_id, run_id, payload)"
            " VALUES ('moodle', 'users', '1', 'r', '{\"email\": \"x@example.org\"}')"
        )
    return {
        "adult": adult, "loner": loner, "enrollment": str(enrollment), "donation": str(donation),
        "organization": str(organization),
    }  # fmt: skip


def _attempt(url: str, role: str, statement: str, ids: dict[str, str]) -> str:
    """'ok', 'denied' (a permission error), or the unexpected error's name; always rolled back."""
    with psycopg.connect(url) as conn:
        conn.execute(f"SET ROLE {role}")
        try:
            conn.execute(statement, ids if "%(" in statement else None)
            outcome = "ok"
        except psycopg.errors.InsufficientPrivilege:
            outcome = "denied"
        except psycopg.Error as error:
            outcome = type(error).__name__
        conn.rollback()
    return outcome


@pytest.mark.parametrize("role", ROLES)
def test_each_role_may_do_exactly_what_the_matrix_allows(warehouse_url: str, seeded, role: str) -> None:
    mismatches = {}
    for operation, (statement, allowed) in MATRIX.items():
        expected = "ok" if role in allowed else "denied"
        outcome = _attempt(warehouse_url, role, statement, seeded)
        if outcome != expected:
            mismatches[operation] = f"expected {expected}, got {outcome}"
    assert mismatches == {}


def test_the_matrix_detects_a_privilege_granted_too_widely(warehouse_url: str, seeded) -> None:
    """Breaking a rule is caught: a grant of consent to the viewer turns 'denied' into 'ok'."""
    statement, allowed = MATRIX["read consent statements"]
    assert "cdp_viewer" not in allowed
    assert _attempt(warehouse_url, "cdp_viewer", statement, seeded) == "denied"
    with psycopg.connect(warehouse_url) as conn:
        conn.execute("GRANT SELECT ON core.consent TO cdp_viewer")
    assert _attempt(warehouse_url, "cdp_viewer", statement, seeded) == "ok"


def test_no_application_role_or_login_holds_a_forbidden_power(warehouse_url: str, logins) -> None:
    logins("cdp_admin")
    with psycopg.connect(warehouse_url) as conn:
        assert catalog.forbidden_role_powers(conn) == []
        # Breaking the rule is caught: a table owned by an application role.
        conn.execute("CREATE TABLE core.owned_by_editor (person_id uuid)")
        conn.execute("ALTER TABLE core.owned_by_editor OWNER TO cdp_editor")
        assert ("cdp_editor", "owns core.owned_by_editor") in catalog.forbidden_role_powers(conn)
        conn.rollback()


def test_a_new_login_is_a_plain_member_of_one_role(warehouse_url: str, logins) -> None:
    url = logins("cdp_viewer")
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, pg_has_role(current_user, 'cdp_viewer', 'MEMBER'),"
            " pg_has_role(current_user, 'cdp_admin', 'MEMBER') FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert row == (False, False, False, True, False)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT email FROM core.person")


def test_create_login_refuses_unknown_roles_and_weak_passwords(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown application role"):
            conn.execute("SELECT privacy.create_login('t_bad_role', 'postgres', 'a-long-password')")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="12 characters"):
            conn.execute("SELECT privacy.create_login('t_weak_pw', 'cdp_viewer', 'short')")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="organisation"):
            conn.execute("SELECT privacy.create_login('t_no_org', 'cdp_partner', 'a-long-password')")
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE 't\\_%%'").fetchone()[0] == 0


def test_the_consent_column_grant_check_sees_column_level_grants(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        assert catalog.outreach_bypass_roles(conn) == []
        conn.execute("GRANT SELECT (status) ON core.consent TO cdp_editor")
        conn.execute("GRANT SELECT (email) ON core.person TO cdp_editor")
        assert catalog.outreach_bypass_roles(conn) == ["cdp_editor"]
        conn.rollback()
