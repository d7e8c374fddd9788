"""No outreach path bypasses mart.outreach_eligible: not in the database (who may read what), and not in
the code (no query in the package, the SQL, the DAGs or the plugins builds a list from consent itself)."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg

from cdp.privacy import catalog

REPO = Path(__file__).resolve().parents[2]
SCANNED = ("include", "sql", "dags", "plugins")
# The view itself and the data subject request functions are defined here (the revision that created them,
# and today's definition of the function that finds a person's raw records by their source ids and email).
DEFINES_THE_VIEW = {
    "sql/migrations/versions/0005_access_consent.sql",
    "sql/definitions/privacy/person_records.sql",
}
# Files that read consent rows and a payload's email only to find whose rows they are, and return row keys,
# never contact details (checked below): the unmerge lineage follows a Stripe payer by billing email.
RETURNS_ROW_KEYS_ONLY = {"sql/dedupe/post_merge_lineage.sql"}
# Files that read consent to link survey responses to their contact's statement, by the sha256 of the address:
# they write row links (person_id, consent_id) into core.survey_response and return nothing (checked below).
LINKS_BY_HASHED_EMAIL = {
    "include/cdp/sources/surveymonkey/sql/responses.sql",
    "include/cdp/sources/surveymonkey/sql/contacts_link.sql",
}

READS_CONSENT = re.compile(r"\b(FROM|JOIN)\s+core\.consent\b", re.IGNORECASE)
WRITES_CONSENT = re.compile(r"\bINSERT\s+INTO\s+core\.consent\b", re.IGNORECASE)
READS_CONTACT = re.compile(r"\b(email|email_normalized|phone|phone_e164)\b", re.IGNORECASE)
MENTIONS_OUTREACH = re.compile(r"outreach|mailing[_ ]?list|newsletter|audience\b", re.IGNORECASE)


def bypasses(text: str) -> list[str]:
    """Why a file's queries could build an outreach list without the view (empty: they cannot)."""
    problems = []
    # A sync mapping that writes consent may look at what is there; reading it beside contact details is
    # how a list is built.
    if READS_CONSENT.search(text) and READS_CONTACT.search(text) and not WRITES_CONSENT.search(text):
        problems.append("reads core.consent with contact details")
    if MENTIONS_OUTREACH.search(text) and READS_CONTACT.search(text) and "mart.outreach_eligible" not in text:
        problems.append("selects contact details for outreach without mart.outreach_eligible")
    return problems


def _files() -> list[Path]:
    return [
        path
        for root in SCANNED
        for path in sorted((REPO / root).rglob("*"))
        if path.suffix in {".py", ".sql"} and ".egg-info" not in str(path)
    ]


def test_no_query_in_the_code_builds_an_outreach_list_around_the_view() -> None:
    offenders = {}
    for path in _files():
        relative = str(path.relative_to(REPO))
        if relative in DEFINES_THE_VIEW or path.resolve() == Path(__file__).resolve():
            continue
        if relative in RETURNS_ROW_KEYS_ONLY:
            final_select = path.read_text().rsplit("\nSELECT ", 1)[1]
            assert not READS_CONTACT.search(final_select), f"{relative} now returns contact details"
            continue
        if relative in LINKS_BY_HASHED_EMAIL:
            text = path.read_text()
            assert "RETURNING" not in text.upper(), f"{relative} now returns rows"
            for line in text.splitlines():
                code = line.split("--", 1)[0]
                if READS_CONTACT.search(code.replace("email_sha256", "").replace("contact_email", "")):
                    assert "sha256(" in code or "IS NOT NULL" in code, (
                        f"{relative} uses an address unhashed: {line}"
                    )
            continue
        problems = bypasses(path.read_text(errors="replace"))
        if problems:
            offenders[relative] = problems
    assert offenders == {}
    assert len(_files()) > 20  # the scan really looked at the code


def test_the_scan_catches_a_list_built_from_consent() -> None:
    assert bypasses(
        "SELECT p.email FROM core.person p JOIN core.consent c USING (person_id) WHERE c.status = 'given'"
    ) == ["reads core.consent with contact details"]
    assert bypasses("def outreach_list(conn): return conn.execute('SELECT email FROM core.person')") == [
        "selects contact details for outreach without mart.outreach_eligible"
    ]
    assert (
        bypasses("def outreach_list(conn): return conn.execute('SELECT email FROM mart.outreach_eligible')")
        == []
    )


def test_no_role_but_admin_and_the_pipeline_reads_consent_and_contact_together(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        assert catalog.outreach_bypass_roles(conn) == []
        readers = {
            row[0]
            for row in conn.execute(
                "SELECT rolname FROM pg_roles WHERE left(rolname, 4) = 'cdp_'"
                " AND has_table_privilege(oid, 'mart.outreach_eligible', 'SELECT')"
            )
        }
    # cdp_definer: the owner of the definer functions (no login, no member), for two functions only:
    # ops.draw_survey_sample, which returns counts and writes person ids, never a contact detail (issue 18,
    # revision 0030), and ops.survey_handover_due, which returns the contact details of the invitations due
    # for hand-over only while the view still holds their person for surveys (revision 0033), to the pipeline
    # and admin, the two roles that may read consent and contact together.
    assert readers == {"cdp_outreach", "cdp_admin", "cdp_definer"}
    with psycopg.connect(warehouse_url) as conn:
        readers_functions = {
            row[0]
            for row in conn.execute(
                "SELECT p.oid::regprocedure::text FROM pg_proc p"
                " WHERE p.proowner = 'cdp_definer'::regrole AND p.prosrc LIKE '%mart.outreach_eligible%'"
            )
        }
        members = conn.execute(
            "SELECT count(*) FROM pg_auth_members WHERE roleid = 'cdp_definer'::regrole").fetchone()[0]  # fmt: skip
    assert (
        readers_functions
        == {
            "ops.draw_survey_sample(text,text,date,numeric,integer,text)",
            "ops.survey_handover_due(text,text,date,integer,text)",
        }
        and members == 0
    )


def test_the_view_is_owned_by_the_migration_owner_not_an_application_role(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        owner = conn.execute(
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'mart.outreach_eligible'::regclass"
        ).fetchone()[0]
    assert not owner.startswith("cdp_")
