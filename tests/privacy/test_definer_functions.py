"""SECURITY DEFINER functions cannot be turned against the warehouse (issue 15).

A definer function runs with its owner's rights. If it names a relation without a schema, a caller's
temporary table of that name (with a trigger of the caller's) is used instead, and the caller's trigger
then runs with the owner's rights: the escalation measured against 0015's support-ticket erasure trigger.
"""

from __future__ import annotations

import re

import psycopg
import pytest

from cdp.privacy import APPLICATION_ROLES

MANAGED_SCHEMAS = ("raw", "core", "mart", "ops", "audit", "privacy")

DEFINER_FUNCTIONS = """
SELECT p.oid::regprocedure::text AS function, r.rolname AS owner, r.rolsuper AS owner_is_superuser,
       (SELECT s.setting FROM unnest(p.proconfig) AS s(setting) WHERE s.setting LIKE 'search_path=%%')
           AS search_path,
       p.prosrc AS body
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
JOIN pg_roles r ON r.oid = p.proowner
WHERE p.prosecdef AND n.nspname = ANY(%s)
ORDER BY 1
"""


def search_path_problem(setting: str | None) -> str | None:
    """Why a definer function's pinned search_path is unsafe, or None when it is pinned with pg_temp last."""
    if not setting:
        return "no pinned search_path (the caller's applies)"
    schemas = [part.strip().strip('"') for part in setting.split("=", 1)[1].split(",")]
    if schemas[-1] != "pg_temp":
        return f"pg_temp not last ({setting}): the caller's temporary objects are searched first"
    return None


def test_the_search_path_rule_refuses_what_it_should() -> None:
    assert search_path_problem("search_path=pg_catalog, pg_temp") is None
    assert search_path_problem("search_path=pg_catalog, ops, pg_temp") is None
    assert search_path_problem("search_path=pg_catalog, ops") is not None
    assert search_path_problem(None) is not None


def test_every_definer_function_pins_its_search_path_with_pg_temp_last(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute(DEFINER_FUNCTIONS, (list(MANAGED_SCHEMAS),)).fetchall()
    assert rows, "no SECURITY DEFINER function found: the catalog query is broken"
    problems = {function: why for function, _, _, path, _ in rows if (why := search_path_problem(path))}
    assert not problems, f"definer functions with an unsafe search_path: {problems}"


ESCALATION = """
CREATE TEMP TABLE erase_needles (needle text, strong boolean);
CREATE FUNCTION pg_temp.grab() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Runs with the rights of whoever inserts: the attacker hopes for the definer function's owner.
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('ALTER ROLE %I SUPERUSER', session_user);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER grab BEFORE INSERT ON pg_temp.erase_needles FOR EACH ROW EXECUTE FUNCTION pg_temp.grab();
"""


@pytest.mark.parametrize("role", ["cdp_loader", "cdp_admin"])
def test_a_temporary_table_cannot_borrow_the_erasure_triggers_rights(
    warehouse_url: str, logins, role: str
) -> None:
    login_url = logins(role)
    with psycopg.connect(warehouse_url) as conn:
        person = conn.execute(
            "INSERT INTO core.person (given_name, family_name, email, email_normalized)"
            " VALUES ('Esc', 'Alation', 'esc@example.org', 'esc@example.org') RETURNING person_id"
        ).fetchone()[0]
    with psycopg.connect(login_url) as attacker:
        login = attacker.execute("SELECT session_user").fetchone()[0]
        attacker.execute(ESCALATION)
        # The erasure trigger (SECURITY DEFINER) fires on this update and writes the email's hash as a needle.
        attacker.execute("UPDATE core.person SET erased_at = now() WHERE person_id = %s", (person,))
        needles = attacker.execute("SELECT count(*) FROM pg_temp.erase_needles").fetchone()[0]
        attacker.commit()
    with psycopg.connect(warehouse_url) as conn:
        superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (login,)).fetchone()[0]
    assert not superuser, f"{role} became superuser through the erasure trigger"
    assert needles == 0, "the definer trigger wrote into a table the caller owns"


# The owner of each definer function, and why it needs more than cdp_definer (sql/README.md, revision 0017).
OWNERS = {"privacy.create_login(text,text,text,uuid)": "cdp_login_admin"}


def owner_problem(function: str, owner: str, owner_is_superuser: bool) -> str | None:
    if owner_is_superuser:
        return f"owned by the superuser {owner}: any flaw in it hands out the whole cluster"
    expected = OWNERS.get(function, "cdp_definer")
    if owner != expected:
        return f"owned by {owner}, not {expected}"
    return None


def test_the_owner_rule_refuses_what_it_should() -> None:
    assert owner_problem("audit.seal()", "cdp_definer", False) is None
    assert owner_problem("audit.seal()", "postgres", True) is not None
    assert owner_problem("audit.seal()", "cdp_admin", False) is not None
    assert owner_problem("privacy.create_login(text,text,text,uuid)", "cdp_definer", False) is not None


def test_every_definer_function_is_owned_by_its_non_superuser_owner_role(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute(DEFINER_FUNCTIONS, (list(MANAGED_SCHEMAS),)).fetchall()
    problems = {
        function: why for function, owner, su, _, _ in rows if (why := owner_problem(function, owner, su))
    }
    assert not problems, f"definer functions with the wrong owner: {problems}"


def test_the_owner_roles_hold_no_more_than_their_functions_need(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        owners = {
            name: (superuser, login, bypassrls, createrole, createdb)
            for name, superuser, login, bypassrls, createrole, createdb in conn.execute(
                "SELECT rolname, rolsuper, rolcanlogin, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles"
                " WHERE rolname IN ('cdp_definer', 'cdp_login_admin')"
            )
        }
        members = conn.execute(
            "SELECT m.member::regrole::text, m.roleid::regrole::text, m.admin_option, m.inherit_option, m.set_option"
            " FROM pg_auth_members m WHERE m.roleid::regrole::text IN ('cdp_definer', 'cdp_login_admin')"
            " OR m.member::regrole::text IN ('cdp_definer', 'cdp_login_admin')"
        ).fetchall()
        owned_tables = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner"
            " WHERE r.rolname IN ('cdp_definer', 'cdp_login_admin')"
        ).fetchone()[0]
        deletes = conn.execute(
            "SELECT table_schema || '.' || table_name, privilege_type FROM information_schema.table_privileges"
            " WHERE grantee = 'cdp_definer' AND privilege_type IN ('DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER')"
        ).fetchall()
    assert owners["cdp_definer"] == (False, False, False, False, False)
    assert owners["cdp_login_admin"] == (False, False, False, True, False), (
        "only CREATEROLE, for create_login"
    )
    # Nobody is a member of an owner role (nobody can act as one); cdp_login_admin administers the seven
    # application roles without holding their rights (no INHERIT, no SET), and is in no other role.
    assert [m for m in members if m[1] in ("cdp_definer", "cdp_login_admin")] == []
    grants = {(role, admin, inherit, set_) for member, role, admin, inherit, set_ in members}
    assert grants == {(role, True, False, False) for role in APPLICATION_ROLES}
    assert owned_tables == 0
    assert deletes == []


# A relation named without a schema inside a definer function resolves through search_path: pg_temp is
# searched for relations even when listed last, so a caller's temporary table of that name would be used.
RELATION_WORDS = re.compile(
    r"\b(insert\s+into|from|join|update|table|into)\s+([a-z_][a-z0-9_]*)(\s*[.(])?", re.I
)
CTE_NAMES = re.compile(
    r"(?:\bwith|,)\s*(?:recursive\s+)?([a-z_][a-z0-9_]*)\s+as\s*(?:not\s+)?(?:materialized\s*)?\(", re.I
)
NOT_RELATIONS = {
    "new_rows",
    "old_rows",
    "lateral",
    "only",
    "if",
    "exists",
    "pg_temp",
    "loop",
    "nowait",
    "of",
    "set",
}


def unqualified_relations(body: str) -> set[str]:
    """Relation names a function body uses without a schema (transition tables and CTEs excepted)."""
    text = re.sub(r"--[^\n]*", " ", body)
    text = re.sub(r"'(?:[^']|'')*'", "''", text)
    ctes = {name.lower() for name in CTE_NAMES.findall(text)}
    found = set()
    for word, name, after in RELATION_WORDS.findall(text):
        if after or name.lower() in ctes or name.lower() in NOT_RELATIONS:
            continue
        if word.lower() == "into":  # plpgsql's SELECT ... INTO variable
            continue
        found.add(name.lower())
    return found


def test_the_qualification_rule_finds_an_unqualified_table() -> None:
    assert unqualified_relations("UPDATE core.person SET x = 1 FROM erase_targets t") == {"erase_targets"}
    assert unqualified_relations("INSERT INTO needles VALUES (1)") == {"needles"}
    assert (
        unqualified_relations("SELECT a INTO v FROM core.person; WITH s AS (SELECT 1) SELECT * FROM s")
        == set()
    )
    assert unqualified_relations("SELECT * FROM jsonb_object_keys(x) k JOIN pg_temp.t ON true") == set()


def test_every_definer_function_names_its_relations_with_their_schema(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute(DEFINER_FUNCTIONS, (list(MANAGED_SCHEMAS),)).fetchall()
    problems = {function: names for function, _, _, _, body in rows if (names := unqualified_relations(body))}
    assert not problems, f"definer functions naming relations without a schema: {problems}"


def test_a_superuser_owned_definer_function_fails_the_catalog_check(warehouse_url: str) -> None:
    """The catalog check sees a definer function the migration's superuser left behind."""
    with psycopg.connect(warehouse_url) as conn:
        conn.execute(
            "CREATE FUNCTION ops.left_behind() RETURNS int LANGUAGE sql SECURITY DEFINER"
            " SET search_path = pg_catalog, pg_temp AS 'SELECT 1'"
        )
        rows = conn.execute(DEFINER_FUNCTIONS, (list(MANAGED_SCHEMAS),)).fetchall()
    flagged = {function for function, owner, su, _, _ in rows if owner_problem(function, owner, su)}
    assert flagged == {"ops.left_behind()"}
