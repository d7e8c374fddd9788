"""SECURITY DEFINER functions cannot be turned against the warehouse (issue 15).

A definer function runs with its owner's rights. If it names a relation without a schema, a caller's
temporary table of that name (with a trigger of the caller's) is used instead, and the caller's trigger
then runs with the owner's rights: the escalation measured against 0015's support-ticket erasure trigger.
"""

from __future__ import annotations

import psycopg
import pytest

MANAGED_SCHEMAS = ("raw", "core", "mart", "ops", "audit", "privacy")

DEFINER_FUNCTIONS = """
SELECT p.oid::regprocedure::text AS function, r.rolname AS owner, r.rolsuper AS owner_is_superuser,
       (SELECT s.setting FROM unnest(p.proconfig) AS s(setting) WHERE s.setting LIKE 'search_path=%%')
           AS search_path
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
    problems = {function: why for function, _, _, path in rows if (why := search_path_problem(path))}
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
