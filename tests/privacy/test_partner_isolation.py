"""Partner organisations through real partner logins: forced row-level security keyed by the session's
partner setting, which counts only for an organisation bound to the login."""

from __future__ import annotations

import psycopg
import pytest
from privacy_seed import add_person, readable_text, years_ago

from cdp.privacy import catalog

PARTNER_SCOPED = [
    "core.organization", "core.organization_membership", "core.enrollment", "core.course_completion",
    "core.certificate", "core.person",
]  # fmt: skip


@pytest.fixture
def two_partners(warehouse_url: str, logins) -> dict[str, str]:
    with psycopg.connect(warehouse_url) as conn:
        ids: dict[str, str] = {}
        course = conn.execute(
            "INSERT INTO core.course (source, source_record_id, title)"
            " VALUES ('moodle', '1', 'Data') RETURNING course_id"
        ).fetchone()[0]
        for name in ("a", "b"):
            org = conn.execute(
                "INSERT INTO core.organization (name) VALUES (%s) RETURNING organization_id::text",
                (f"Partner {name}",),
            ).fetchone()[0]
            learner = add_person(conn, born=years_ago(20), given_name=f"Learner {name}")
            conn.execute(
                "INSERT INTO core.organization_membership (organization_id, person_id) VALUES (%s, %s)",
                (org, learner),
            )
            enrollment = conn.execute(
                "INSERT INTO core.enrollment"
                " (person_id, course_id, organization_id, enrolled_at, source, source_record_id)"
                " VALUES (%s, %s, %s, now(), 'moodle', %s) RETURNING enrollment_id::text",
                (learner, course, org, f"e-{name}"),
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO core.course_completion (person_id, course_id, enrollment_id, completed_at, source,"
                " source_record_id) VALUES (%s, %s, %s, now(), 'moodle', %s)",
                (learner, course, enrollment, f"c-{name}"),
            )
            conn.execute(
                "INSERT INTO core.donation (financial_transaction_id, person_id, amount_minor, currency, received_at,"
                " source, source_record_id) VALUES (%s, %s, 2500, 'EUR', now(), 'stripe', %s)",
                (f"FT-partner-{name}", learner, f"ch_partner_{name}"),
            )
            ids |= {f"org_{name}": org, f"learner_{name}": learner, f"enrollment_{name}": enrollment}
        # Someone who is nobody's partner learner.
        ids["outsider"] = add_person(conn, born=years_ago(30))
    ids["url_a"] = logins("cdp_partner", ids["org_a"])
    ids["url_b"] = logins("cdp_partner", ids["org_b"])
    return ids


def _visible(conn: psycopg.Connection) -> dict[str, set[str]]:
    return {
        "enrollments": {r[0] for r in conn.execute("SELECT enrollment_id::text FROM core.enrollment")},
        "completions": {r[0] for r in conn.execute("SELECT person_id::text FROM core.course_completion")},
        "people": {r[0] for r in conn.execute("SELECT person_id::text FROM core.person")},
        "memberships": {
            r[0] for r in conn.execute("SELECT organization_id::text FROM core.organization_membership")
        },
        "organizations": {r[0] for r in conn.execute("SELECT organization_id::text FROM core.organization")},
    }


def test_a_partner_sees_only_its_own_learners(two_partners) -> None:
    ids = two_partners
    with psycopg.connect(ids["url_a"]) as conn:
        conn.execute("SELECT set_config('cdp.partner_organization_id', %s, false)", (ids["org_a"],))
        assert _visible(conn) == {
            "enrollments": {ids["enrollment_a"]},
            "completions": {ids["learner_a"]},
            "people": {ids["learner_a"]},
            "memberships": {ids["org_a"]},
            "organizations": {ids["org_a"]},
        }
        # Searching for B's learner by id finds nothing.
        assert (
            conn.execute("SELECT 1 FROM core.person WHERE person_id = %s", (ids["learner_b"],)).fetchall()
            == []
        )


def test_no_partner_set_means_no_rows(two_partners) -> None:
    with psycopg.connect(two_partners["url_a"]) as conn:
        assert all(not rows for rows in _visible(conn).values())


def test_naming_another_partner_in_the_session_shows_nothing(two_partners) -> None:
    ids = two_partners
    with psycopg.connect(ids["url_a"]) as conn:
        conn.execute("SELECT set_config('cdp.partner_organization_id', %s, false)", (ids["org_b"],))
        assert all(not rows for rows in _visible(conn).values())
        conn.execute("SELECT set_config('cdp.partner_organization_id', 'not-a-uuid', false)")
        assert all(not rows for rows in _visible(conn).values())


def test_a_partner_cannot_write_another_partners_rows(warehouse_url: str, two_partners) -> None:
    ids = two_partners
    with psycopg.connect(ids["url_a"], autocommit=True) as conn:
        conn.execute("SELECT set_config('cdp.partner_organization_id', %s, false)", (ids["org_a"],))
        changed = conn.execute(
            "UPDATE core.organization_membership SET cohort = 'hijacked' WHERE organization_id = %s",
            (ids["org_b"],),
        ).rowcount
        assert changed == 0
        # Memberships are registered through privacy.register_member only; a membership's organisation and
        # person are not the partner's to change.
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
            conn.execute(
                "INSERT INTO core.organization_membership (organization_id, person_id, cohort) VALUES (%s, %s, 'x')",
                (ids["org_b"], ids["outsider"]),
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
            conn.execute(
                "UPDATE core.organization_membership SET organization_id = %s WHERE organization_id = %s",
                (ids["org_b"], ids["org_a"]),
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE core.enrollment SET status = 'withdrawn'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT email FROM core.person")
        # Its own cohort it may register, and rename.
        conn.execute("SELECT privacy.register_member(%s, '2026')", (ids["outsider"],))
        conn.execute("SELECT privacy.register_member(%s, '2026')", (ids["outsider"],))  # again: no change
        conn.execute(
            "UPDATE core.organization_membership SET cohort = '2026-spring' WHERE person_id = %s",
            (ids["outsider"],),
        )
    with psycopg.connect(warehouse_url) as conn:
        cohorts = dict(
            conn.execute(
                "SELECT organization_id::text || '/' || person_id::text, cohort FROM core.organization_membership"
            ).fetchall()
        )
    assert cohorts[f"{ids['org_b']}/{ids['learner_b']}"] == ""
    assert cohorts[f"{ids['org_a']}/{ids['outsider']}"] == "2026-spring"


def test_a_partner_cannot_adopt_another_organisations_member(two_partners) -> None:
    """The attack: partner A registered B's learner in A's own organisation, and then read the learner's name."""
    ids = two_partners
    with psycopg.connect(ids["url_a"], autocommit=True) as conn:
        conn.execute("SELECT set_config('cdp.partner_organization_id', %s, false)", (ids["org_a"],))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
            conn.execute(
                "INSERT INTO core.organization_membership (organization_id, person_id) VALUES (%s, %s)",
                (ids["org_a"], ids["learner_b"]),
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="cannot be registered") as refused:
            conn.execute("SELECT privacy.register_member(%s)", (ids["learner_b"],))
        # A made-up person id gets the same answer: the function does not tell which ids exist.
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="cannot be registered") as unknown:
            conn.execute("SELECT privacy.register_member(gen_random_uuid())")
        assert str(unknown.value).split(" cannot")[1] == str(refused.value).split(" cannot")[1]
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
            conn.execute(
                "UPDATE core.organization_membership SET person_id = %s WHERE organization_id = %s",
                (ids["learner_b"], ids["org_a"]),
            )
        assert (
            conn.execute(
                "SELECT given_name FROM core.person WHERE person_id = %s", (ids["learner_b"],)
            ).fetchall()
            == []
        )
        assert _visible(conn)["people"] == {ids["learner_a"]}
    # Without a partner named for the session nothing is registered.
    with (
        psycopg.connect(ids["url_b"], autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="no partner organisation"),
    ):
        conn.execute("SELECT privacy.register_member(%s)", (ids["outsider"],))


def test_a_partner_reads_nothing_of_audit(warehouse_url: str, two_partners) -> None:
    """The attack: audit.audit_events' row images showed a partner every organisation's enrollments and
    donations. A partner keeps only what the chain trigger reads when its own writes are audited."""
    ids = two_partners
    with psycopg.connect(ids["url_a"], autocommit=True) as conn:
        conn.execute("SELECT set_config('cdp.partner_organization_id', %s, false)", (ids["org_a"],))
        for statement in (
            "SELECT * FROM audit.audit_events",
            "SELECT after FROM audit.audit_events",
            "SELECT entity_type, entity_id FROM audit.audit_events",
            "SELECT * FROM audit.readable_events",
            "SELECT * FROM audit.personal_image",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        # Everything A can read anywhere holds nothing of B's.
        text = " ".join(readable_text(conn).values())
        for value in (
            ids["org_b"],
            ids["learner_b"],
            ids["enrollment_b"],
            "Learner b",
            "FT-partner-b",
            "ch_partner_b",
        ):
            assert value not in text
        # A's own writes are still audited although A reads nothing of the chain: its triggers run as the
        # definer role (revision 0017).
        conn.execute(
            "UPDATE core.organization_membership SET cohort = '2027' WHERE person_id = %s",
            (ids["learner_a"],),
        )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT max(seq) FROM audit.audit_events")
    with psycopg.connect(warehouse_url) as conn:
        assert (
            conn.execute(
                "SELECT session_role FROM audit.audit_events WHERE entity_type = 'core.organization_membership'"
                " ORDER BY seq DESC LIMIT 1"
            )
            .fetchone()[0]
            .startswith("t_partner_")
        )


def test_every_partner_scoped_table_has_forced_rls_and_a_partner_policy(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        assert catalog.partner_tables_without_rls(conn) == []
        forced = dict(
            conn.execute(
                "SELECT c.oid::regclass::text, c.relforcerowsecurity FROM pg_class c"
                " WHERE c.oid::regclass::text = ANY(%s)",
                (PARTNER_SCOPED,),
            ).fetchall()
        )
        assert forced == dict.fromkeys(PARTNER_SCOPED, True)
        # Breaking the rule is caught: a partner-readable table of learners without RLS, then not forced.
        conn.execute("CREATE TABLE core.partner_report (organization_id uuid, person_id uuid)")
        conn.execute("GRANT SELECT ON core.partner_report TO cdp_partner")
        assert catalog.partner_tables_without_rls(conn) == ["core.partner_report"]
        conn.execute("ALTER TABLE core.partner_report ENABLE ROW LEVEL SECURITY")
        conn.execute("CREATE POLICY p ON core.partner_report TO cdp_partner USING (true)")
        assert catalog.partner_tables_without_rls(conn) == ["core.partner_report"]
        conn.execute("ALTER TABLE core.partner_report FORCE ROW LEVEL SECURITY")
        assert catalog.partner_tables_without_rls(conn) == []
        conn.rollback()
