"""Today's views and functions live once in sql/definitions/, and applying them changes nothing the
revisions built: every object has one file, a second migrate is a no-op, and the schema is the one the
revisions alone give."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic import command
from support import create_database, drop_database

from cdp.warehouse import migrations
from cdp.warehouse.embedded import EmbeddedServer

# Every schema of the warehouse's own (raw, core, mart, ops, audit, privacy, and any added later).
OWN_SCHEMAS = (
    "SELECT array_agg(nspname) FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema'"
)
DEFINES = re.compile(r"^CREATE OR REPLACE (FUNCTION|VIEW) ([a-z_]+\.[a-z_]+)", re.MULTILINE)
REVISION_DEFINES = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:FUNCTION|VIEW)\s+([a-z_]+\.[a-z_]+)", re.I | re.M
)
REVISIONS = migrations.MIGRATIONS_DIR / "versions"
# The revisions written before sql/definitions/ existed; they keep their views and functions as history.
REVISIONS_WITH_DEFINITIONS = {
    "0001_foundation.sql",
    "0003_identity_merges.sql",
    "0004_quality_finance.sql",
    "0005_access_consent.sql",
    "0006_legacy_audit_platforms.sql",
    "0007_crm_push_triggers.sql",
    "0008_referral_migration.sql",
    "0012_privacy_erasure.sql",
    "0014_crm_linking.sql",
    "0015_support_tickets.sql",
}

# Everything the definitions could touch, as the catalog states it. ACLs are compared as sets of grants
# (a NULL ACL read as the built-in default it stands for), so the order grants were made in does not count.
CATALOG = {
    "views": """
        SELECT c.oid::regclass::text, pg_get_viewdef(c.oid), c.reloptions::text, pg_get_userbyid(c.relowner),
               obj_description(c.oid, 'pg_class'),
               (SELECT string_agg(format('%%s %%s', a.attname, format_type(a.atttypid, a.atttypmod)), ', '
                                  ORDER BY a.attnum)
                FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)
        FROM pg_class c
        WHERE c.relkind IN ('v', 'm') AND c.relnamespace::regnamespace::text = ANY (%(schemas)s)""",
    "functions": """
        SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid), p.prosecdef, p.proconfig::text,
               pg_get_userbyid(p.proowner), obj_description(p.oid, 'pg_proc')
        FROM pg_proc p WHERE p.pronamespace::regnamespace::text = ANY (%(schemas)s)""",
    "relation_grants": """
        SELECT c.oid::regclass::text, a.grantor::regrole::text, a.grantee, a.privilege_type, a.is_grantable
        FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
        WHERE c.relnamespace::regnamespace::text = ANY (%(schemas)s)""",
    "column_grants": """
        SELECT c.oid::regclass::text, t.attname, a.grantee, a.privilege_type
        FROM pg_class c JOIN pg_attribute t ON t.attrelid = c.oid, aclexplode(t.attacl) a
        WHERE c.relnamespace::regnamespace::text = ANY (%(schemas)s)""",
    "function_grants": """
        SELECT p.oid::regprocedure::text, a.grantor::regrole::text, a.grantee, a.privilege_type, a.is_grantable
        FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
        WHERE p.pronamespace::regnamespace::text = ANY (%(schemas)s)""",
    "triggers": """
        SELECT t.tgrelid::regclass::text, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE NOT t.tgisinternal AND c.relnamespace::regnamespace::text = ANY (%(schemas)s)""",
    "policies": """
        SELECT schemaname, tablename, policyname, permissive, roles::text, cmd, qual, with_check
        FROM pg_policies WHERE schemaname = ANY (%(schemas)s)""",
}
# The objects themselves: replacing in place keeps them; dropping and re-creating would not.
IDENTITIES = """
    SELECT 'view', c.oid::regclass::text, c.oid FROM pg_class c
    WHERE c.relkind = 'v' AND c.relnamespace::regnamespace::text = ANY (%(schemas)s)
    UNION ALL
    SELECT 'function', p.oid::regprocedure::text, p.oid FROM pg_proc p
    WHERE p.pronamespace::regnamespace::text = ANY (%(schemas)s)"""


def catalog(url: str, *, with_identities: bool = False) -> dict[str, list[tuple]]:
    queries = dict(CATALOG, identities=IDENTITIES) if with_identities else CATALOG
    with psycopg.connect(url) as conn:
        schemas = own_schemas(conn)
        return {
            name: sorted(conn.execute(query, {"schemas": schemas}).fetchall(), key=repr)
            for name, query in queries.items()
        }


def own_schemas(conn: psycopg.Connection) -> list[str]:
    schemas = conn.execute(OWN_SCHEMAS).fetchone()[0]
    assert {"raw", "core", "mart", "ops", "audit", "privacy"} <= set(schemas)
    return schemas


def defined_in_files() -> Counter[str]:
    """How many times the definition files create each object (should be once)."""
    return Counter(
        name for path in migrations.definition_files() for _, name in DEFINES.findall(path.read_text())
    )


@pytest.fixture
def two_empty_databases(pg_server: EmbeddedServer) -> Iterator[tuple[str, str]]:
    names = [create_database(pg_server), create_database(pg_server)]
    yield pg_server.url(names[0]), pg_server.url(names[1])
    for name in names:
        drop_database(pg_server, name)


def test_every_view_and_function_has_exactly_one_definition_file(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        in_database = Counter(
            row[0]
            for row in conn.execute(
                "SELECT c.relnamespace::regnamespace || '.' || c.relname FROM pg_class c"
                " WHERE c.relkind IN ('v', 'm') AND c.relnamespace::regnamespace::text = ANY (%(schemas)s)"
                " UNION ALL SELECT p.pronamespace::regnamespace || '.' || p.proname FROM pg_proc p"
                " WHERE p.pronamespace::regnamespace::text = ANY (%(schemas)s)",
                {"schemas": own_schemas(conn)},
            )
        )
    in_files = defined_in_files()

    assert {name for name, count in in_files.items() if count > 1} == set(), "defined in two places"
    # An overload left behind (a changed argument list creates a second function) counts twice here.
    assert {name for name, count in in_database.items() if count > 1} == set()
    assert set(in_database) - set(in_files) == set(), "in the warehouse without a file in sql/definitions/"
    assert set(in_files) - set(in_database) == set(), "a file defines what the warehouse does not have"


def test_new_revisions_leave_views_and_functions_to_the_definitions() -> None:
    defining = {path.name for path in REVISIONS.glob("*.sql") if REVISION_DEFINES.search(path.read_text())}

    assert defining - REVISIONS_WITH_DEFINITIONS == set(), "write views and functions in sql/definitions/"


def test_a_revision_whose_definition_was_replaced_points_to_todays() -> None:
    lines = [line for path in sorted(REVISIONS.glob("*.sql")) for line in path.read_text().splitlines()]
    definitions = [(at, match[1]) for at, line in enumerate(lines) if (match := REVISION_DEFINES.match(line))]
    last = {name: at for at, name in definitions}

    superseded = [(at, name) for at, name in definitions if at != last[name]]
    assert superseded, "the history has replaced definitions (erase_person, record_change, ...)"
    for at, name in superseded:
        assert lines[at - 1].startswith("-- Superseded by "), f"{name}: say where today's definition is"
        target = lines[at - 1].split("today's definition is in ", 1)[1].rstrip(".")
        assert name in defined_in_files_of(
            migrations.DEFINITIONS_DIR / target.removeprefix("sql/definitions/")
        )


def defined_in_files_of(path: Path) -> set[str]:
    return {name for _, name in DEFINES.findall(path.read_text())}


# Definitions changed in sql/definitions/ after they were taken out of the revisions (which stay history):
# object -> why. Everything else must still be exactly what the revisions alone build, and each object
# listed here must really differ, so the list stays true.
CHANGED_SINCE_THE_REVISIONS = {
    "ops.draw_survey_sample(text,text,date,numeric,integer,text)": "issue 18: added; the weekly survey sample, "
    "the only writer of ops.survey_invitation (revision 0030)",
    "ops.survey_answer_number(jsonb)": "issue 18: added; the number a survey answer stands for",
    "ops.survey_response_invitation": "issue 18: added; survey answers linked to their invitation by exact key; "
    "a SurveyMonkey answer also by the recipient the hand-over recorded (revision 0033)",
    "ops.survey_handover_due(text,text,date,integer,text)": "issue 18: added; the invitations due for hand-over, "
    "consent re-checked (revision 0033)",
    "ops.record_survey_handover(uuid,text,text,text,text,text,text)": "issue 18: added; the only writer of "
    "ops.survey_handover (revision 0033)",
    "mart.survey_invitation_outcome": "issue 18: added; each invitation, answered or not, and its scores",
    "mart.survey_response_rate_weekly": "issue 18: added; response rate per sample week and tool",
    "mart.survey_scores_weekly": "issue 18: added; NPS and satisfaction per sample week and course",
    "mart.survey_nonresponse": "issue 18: added; who answered against who was asked, by course and cohort",
    "ops.count_window(text,text,regclass,text,text,timestamp with time zone,timestamp with time zone)": "issue 17: "
    "a record deleted at the source before it reached core (core.source_deletion, revision 0023) counts as landed; "
    "a record deleted at the source after it landed (deleted_at, revision 0024) is counted apart (deleted_count)",
    "core.erase_support_tickets()": "issue 15: writes needles only into the erasure's own table, never a "
    "caller's temporary table (the superuser escalation)",
    "ops.apply_identity_decision()": "issue 15: search_path pinned with pg_temp last",
    "privacy.export_person(uuid)": "a data subject's export holds their volunteer records, shifts and hours",
    "ops.reason_class(text)": "issue 15: added; a quarantine reason without the value it quotes",
    "ops.reconciliation_quarantine": "issue 15: added; the quarantined money the reconciliation names, without "
    "the payload (its role, cdp_reconcile, reads no payload)",
    "privacy.erase_person(uuid,text)": "issue 15 item 8: also blanks kept undeliverable webhook bodies "
    "(ops.webhook_undeliverable, revision 0016) that hold the person's email; issue 15: its temporary "
    "tables named pg_temp.*; also blanks the quarantine's reason_value (revision 0020)",
    "privacy.erase_person_ops(uuid,text)": "issue 15: its temporary tables named pg_temp.*; blanks the merge "
    "before-images and review notes of the person (revision 0028)",
    "audit.chain_event()": "issue 15: SECURITY DEFINER; stamps without a lock, seals at commit (revision 0017)",
    "audit.seal_pending()": "issue 15: added; chains the unsealed events (revision 0017)",
    "audit.seal()": "issue 15: added; seals what no commit could (revision 0017)",
    "audit.refuse_change()": "issue 15: lets the seal through (revision 0017)",
    "audit.record_event(text,text,text,jsonb,jsonb,jsonb)": "issue 15: SECURITY DEFINER, the only way to write "
    "an application event; returns event_id (revision 0017)",
    "audit.record_change()": "issue 15: SECURITY DEFINER (no role inserts audit rows itself, revision 0017)",
    "ops.calling_person()": "issue 15: the database login, not the cdp.actor setting",
    "ops.request_donation_correction(text,jsonb,text)": "issue 15: records the claimed actor beside the login",
    "ops.decide_donation_correction(bigint,boolean,text)": "issue 15: another login must decide",
    "ops.refuse_direct_correction_write()": "issue 15: the correction functions run as cdp_definer",
    "core.guard_donation_money()": "issue 15: guards every column finance reconciles",
    "ops.identity_review_queue": "issue 15 item 3: person columns masked unless the reader may read them in "
    "core.person; same_email, same_phone, same_date_of_birth added",
    "audit.readable_events": "issue 15 item 3: added; audit images cut to the columns the reader may read",
    "audit.readable_image(text,jsonb)": "issue 15 item 3: added (audit.readable_events)",
    "privacy.register_member(uuid,text,date)": "issue 15 item 4: added; partners register members only here",
    "ops.crm_gift_landed": "issue 21: added; where the count diff finds a CRM opportunity (on its processor donation)",
    "mart.kpi_referral_volume_monthly": "issue 17: a subscriber deleted at ReferralHero no longer counts",
    "mart.kpi_referral_conversion_monthly": "issue 17: a subscriber deleted at ReferralHero no longer counts",
    "mart.kpi_referral_support_tickets_monthly": "issue 17: a ticket deleted at Zendesk no longer counts",
    "ops.merge_people(uuid,uuid,text,text,bigint,double precision,text)": "issue 15: added (revision 0027); a "
    "merge moves rows the dedupe's role may not read (consent, donations) as cdp_definer",
    "ops.round_half_even(numeric)": "issue 19: added; NPSP's rounding of a percent allocation (revision 0031)",
    "ops.allocation_amount": "issue 19: added; each allocation of a gift in cents (revision 0031)",
    "ops.gift_allocation": "issue 19: added; each CRM gift reconciled to its allocations (revision 0031)",
    "ops.unallocated_gift": "issue 19: added; gifts not allocated to the cent (revision 0031)",
    "mart.activity_fund": "issue 19: added; activity attributed to the funds of its day (revision 0031)",
    "mart.fund_allocated_revenue_monthly": "issue 19: added; revenue allocated to each fund per month (revision 0031)",
    "mart.fund_impact_rows": "issue 19: added; the rows behind each impact figure",
    "mart.fund_impact_monthly": "issue 19: added; impact per fund and month",
    "ops.find_course(text)": "issue 19: added; a course by id, source:id or code (revision 0031)",
    "ops.program_funds_checked(jsonb)": "issue 19: added; a program's funds and shares checked (revision 0031)",
    "ops.request_program_change(text,text,text,jsonb,date,text)": "issue 19: added (revision 0031)",
    "ops.decide_program_change(bigint,boolean,text)": "issue 19: added; another login decides (revision 0031)",
    "ops.approve_program_change(bigint,text)": "issue 19: added (revision 0031)",
    "ops.reject_program_change(bigint,text)": "issue 19: added (revision 0031)",
}


def test_definitions_rebuild_exactly_what_the_revisions_built(two_empty_databases: tuple[str, str]) -> None:
    revisions_only, migrated = two_empty_databases
    command.upgrade(migrations.alembic_config(revisions_only), "head")

    migrations.upgrade(migrated)

    expected, actual = catalog(revisions_only), catalog(migrated)
    assert expected["views"] and expected["functions"]
    for part in CATALOG:
        changed = {row[0] for row in actual[part] if row[0] in CHANGED_SINCE_THE_REVISIONS}
        assert [row for row in actual[part] if row[0] not in changed] == [
            row for row in expected[part] if row[0] not in changed
        ], part
    objects_then, objects_now = (
        dict((row[0], row) for part in ("functions", "views") for row in expected[part]),
        dict((row[0], row) for part in ("functions", "views") for row in actual[part]),
    )
    for name in CHANGED_SINCE_THE_REVISIONS:
        assert objects_now[name] != objects_then.get(name), f"{name} no longer differs: take it off the list"


def test_migrating_again_changes_nothing(warehouse_url: str) -> None:
    before = catalog(warehouse_url, with_identities=True)

    migrations.upgrade(warehouse_url)

    assert catalog(warehouse_url, with_identities=True) == before


def test_dropped_views_come_back_in_order_with_their_comments_and_grants(warehouse_url: str) -> None:
    before = catalog(warehouse_url)
    with psycopg.connect(warehouse_url) as conn:
        for (view,) in conn.execute(
            "SELECT c.oid::regclass::text FROM pg_class c"
            " WHERE c.relkind = 'v' AND c.relnamespace::regnamespace::text = ANY (%(schemas)s)",
            {"schemas": own_schemas(conn)},
        ).fetchall():
            conn.execute(f"DROP VIEW IF EXISTS {view} CASCADE")
        assert conn.execute("SELECT count(*) FROM pg_views WHERE schemaname = 'mart'").fetchone()[0] == 0

    migrations.apply_definitions(warehouse_url)

    assert catalog(warehouse_url) == before


def _definitions_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str]) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(migrations, "DEFINITIONS_DIR", tmp_path)
    monkeypatch.setattr(migrations, "DEFINITIONS_MANIFEST", tmp_path / "manifest.txt")


def test_a_view_that_loses_a_column_is_refused_with_the_way_out_and_nothing_is_applied(
    warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _definitions_dir(
        tmp_path,
        monkeypatch,
        {
            "manifest.txt": "mart/comment.sql\nmart/narrower.sql\n",
            "mart/comment.sql": "COMMENT ON VIEW mart.kpi_referral_volume_monthly IS 'changed';\n",
            "mart/narrower.sql": "CREATE OR REPLACE VIEW mart.kpi_referral_volume_monthly AS SELECT 1 AS month;\n",
        },
    )
    before = catalog(warehouse_url)

    with pytest.raises(migrations.DefinitionConflict, match=r"mart/narrower\.sql .*DROP VIEW/FUNCTION"):
        migrations.apply_definitions(warehouse_url)

    assert catalog(warehouse_url) == before  # the comment of the first file was rolled back with it


def test_a_file_missing_from_the_manifest_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _definitions_dir(
        tmp_path,
        monkeypatch,
        {"manifest.txt": "# order\nmart/a.sql\n", "mart/a.sql": "SELECT 1;\n", "mart/b.sql": "SELECT 1;\n"},
    )

    with pytest.raises(migrations.DefinitionError, match=r"not listed \['mart/b\.sql'\]"):
        migrations.definition_files()
