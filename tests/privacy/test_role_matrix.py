"""The role × action matrix: for every application role (read from the catalog), every schema, table, view and
definer function of the warehouse, what PostgreSQL lets the role do is exactly what EXPECTED below declares,
and EXPECTED itself keeps to what each role's name says (the rules under it). docs/role_matrix.md is the
rendering of the same catalog; real logins try the paths to personal data.

When a grant changes on purpose, change its cell here and regenerate the document:
``CDP_WRITE_ROLE_MATRIX=1 .venv/bin/python -m pytest tests/privacy/test_role_matrix.py``."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from cdp.privacy import role_matrix

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "role_matrix.md"
ROLES = ("cdp_loader", "cdp_viewer", "cdp_editor", "cdp_admin", "cdp_finance", "cdp_partner", "cdp_outreach",
         "cdp_webhook", "cdp_reconcile", "cdp_dedupe", "cdp_evidence", "cdp_funder_report", "cdp_definer",
         "cdp_login_admin")  # fmt: skip
# The two owner roles of the SECURITY DEFINER functions (revision 0017): no login, no member; what they may do
# is what those functions do (tests/privacy/test_definer_functions.py checks their powers).
OWNER_ROLES = ("cdp_definer", "cdp_login_admin")
APPLICATION_ROLES = tuple(role for role in ROLES if role not in OWNER_ROLES)

# One line per object: its privileges for each role in ROLES' order (letters as in role_matrix.LEGEND;
# '-' for nothing). A section header names the kind of the objects below it.
EXPECTED = """
#                                                    load  view  edit  admin fin   part  outr  hook  recon dedup evid  fundr defin login
[schema]
audit                                                U     U     U     U     U     U     -     -     U     U     U     U     U     U
core                                                 U     U     U     U     U     U     -     -     U     U     -     U     U     U
mart                                                 U     U     U     U     U     -     U     -     -     -     -     U     U     -
ops                                                  U     U     U     U     U     -     -     U     U     U     U     -     U     -
privacy                                              U     U     U     U     U     U     U     -     -     -     -     -     U     U
public                                               U     U     U     U     U     U     U     U     U     U     U     U     U     U
raw                                                  U     U     U     U     U     -     -     U     -     -     -     -     U     -
[table]
alembic_version                                      -     -     -     -     -     -     -     -     -     -     -     -     -     -
audit.audit_events                                   r     s     s     r     s     -     -     -     s     s     r     s     raw   -
audit.personal_column                                r     r     r     r     r     r     -     -     -     -     r     -     r     -
audit.personal_image                                 -     -     -     r     -     -     -     -     -     -     -     -     raw   -
core.balance_transaction                             rawd  r     r     rawd  r     -     -     -     s     -     -     -     r     -
core.certificate                                     rawd  r     raw   rawd  r     r     -     -     -     -     -     -     ru    -
core.consent                                         raw   -     -     rawd  -     -     -     -     -     -     -     -     raw   -
core.consent_age_rule                                r     r     r     rawd  r     -     -     -     -     -     -     -     r     -
core.course                                          rawd  r     raw   rawd  r     r     -     -     -     -     -     -     r     -
core.course_completion                               rawd  r     raw   rawd  r     r     -     -     -     -     -     -     ru    -
core.crm_account_contact                             rawd  r     r     r     r     -     -     -     -     -     -     -     r     -
core.crm_record_removal                              raw   r     r     r     -     -     -     -     -     -     -     -     ru    -
core.dispute                                         raw   r     r     r     r     -     -     -     s     -     -     -     -     -
core.donation                                        raw   r     r     rad   r     -     -     -     s     -     -     -     rw    -
core.donation_allocation                             raw   r     r     r     r     -     -     -     -     -     -     r     r     -
core.donation_soft_credit                            rawd  r     r     rawd  r     -     -     -     -     -     -     -     ru    -
core.enrollment                                      rawd  r     raw   rawd  r     r     -     -     -     -     -     -     ru    -
core.fund                                            raw   r     r     r     r     -     -     -     -     -     -     r     r     -
core.household                                       rawd  s     s     rawd  s     -     -     -     -     s     -     -     rw    -
core.ledger_posting                                  rawd  r     r     rawd  r     -     -     -     s     -     -     -     r     -
core.organization                                    rawd  r     raw   rawd  r     r     -     -     -     -     -     -     r     -
core.organization_membership                         rawd  r     raw   rawd  r     ru    -     -     -     -     -     -     rau   -
core.partner_login                                   -     r     r     rawd  r     -     -     -     -     -     -     -     r     a
core.person                                          raw   s     s     rawd  s     s     -     -     -     s     -     -     rw    -
core.person_source_id                                rawd  s     s     rawd  s     -     -     -     -     s     -     -     rw    -
core.program                                         -     r     r     r     r     -     -     -     -     -     -     -     raw   -
core.program_course                                  -     r     r     r     r     -     -     -     -     -     -     -     raw   -
core.program_fund                                    -     r     r     r     r     -     -     -     -     -     -     -     raw   -
core.referral                                        rawd  r     r     rawd  r     -     -     -     -     -     -     -     ru    -
core.refund                                          rawd  r     r     rad   r     -     -     -     s     -     -     -     r     -
core.reward                                          rawd  r     r     rawd  r     -     -     -     -     -     -     -     ru    -
core.source_deletion                                 raw   r     r     r     r     -     -     -     -     -     -     -     r     -
core.support_ticket                                  rawd  s     s     rawd  s     -     -     -     -     -     -     -     rw    -
core.survey_response                                 raw   s     s     rawd  s     -     -     -     -     -     -     -     rw    -
core.volunteer                                       rawd  r     r     rawd  r     -     -     -     -     -     -     -     ru    -
core.volunteer_hours                                 rawd  r     r     rawd  r     -     -     -     -     -     -     -     ru    -
core.volunteer_shift                                 rawd  r     r     rawd  r     -     -     -     -     -     -     -     ru    -
ops.alert_state                                      raw   r     r     r     r     -     -     -     rau   siu   -     -     r     -
ops.alert_threshold                                  r     r     r     rawd  r     -     -     -     -     -     -     -     r     -
ops.completion_trigger                               raw   r     r     r     r     -     -     -     -     -     -     -     r     -
ops.count_diff                                       raw   r     r     r     r     -     -     -     -     -     -     -     r     -
ops.count_diff_threshold                             r     r     r     rawd  r     -     -     -     -     -     -     -     r     -
ops.crm_contact_link                                 rawd  r     r     r     r     -     -     -     -     -     -     -     r     -
ops.crm_contact_review                               raw   r     r     r     r     -     -     -     -     -     -     -     r     -
ops.crm_push_change                                  rawd  r     r     r     r     -     -     -     -     -     -     -     rw    -
ops.crm_push_conflict                                raw   r     ru    ru    r     -     -     -     -     -     -     -     rw    -
ops.crm_push_error                                   raw   s     s     r     s     -     -     -     -     -     -     -     rw    -
ops.crm_push_run                                     raw   r     r     r     r     -     -     -     -     -     -     -     r     -
ops.crm_push_state                                   rawd  r     r     r     r     -     -     -     -     -     -     -     rw    -
ops.dedupe_run                                       rawd  r     r     r     -     -     -     -     -     riud  -     -     r     -
ops.donation_correction                              -     -     r     r     r     -     -     -     -     -     r     -     raw   -
ops.finance_ledger_account                           r     -     r     r     rawd  -     -     -     r     -     -     -     r     -
ops.health_check                                     rawd  r     r     r     r     -     -     -     -     -     -     -     r     -
ops.identity_decision                                rawd  s     ra    ra    -     -     -     -     -     s     -     -     ru    -
ops.identity_merge                                   rawd  s     s     r     -     -     -     -     -     -     -     -     riu   -
ops.identity_merge_move                              rawd  s     s     r     -     -     -     -     -     -     -     -     ri    -
ops.identity_pair                                    rawd  r     r     r     -     -     -     -     -     siu   -     -     rw    -
ops.identity_pair_score                              rawd  -     -     -     -     -     -     -     -     rid   -     -     r     -
ops.legacy_clean_record                              rawd  -     -     r     -     -     -     -     -     -     -     -     rw    -
ops.legacy_profile                                   rawd  r     r     r     r     -     -     -     -     -     -     -     r     -
ops.legacy_profile_metric                            rawd  r     r     r     r     -     -     -     -     -     -     -     r     -
ops.legacy_review                                    rawd  s     s     r     s     -     -     -     -     -     -     -     rw    -
ops.privilege_snapshot                               -     -     -     -     -     -     -     -     -     -     ra    -     -     -
ops.program_change                                   -     -     r     r     r     -     -     -     -     -     r     -     raw   -
ops.quarantine                                       rawd  s     s     r     s     -     -     -     -     -     -     -     rw    -
ops.reconciliation_explanation                       r     -     r     r     rawd  -     -     -     r     -     r     -     r     -
ops.reconciliation_result                            raw   -     r     r     r     -     -     -     ra    -     r     -     r     -
ops.reconciliation_run                               raw   -     r     r     r     -     -     -     rau   -     r     -     r     -
ops.reconciliation_total                             raw   -     r     r     r     -     -     -     ra    -     r     -     r     -
ops.referral_discrepancy                             rawd  r     r     r     r     -     -     -     -     -     -     -     r     -
ops.referral_legacy                                  rawd  -     -     r     -     -     -     -     -     -     -     -     rw    -
ops.referral_pilot                                   rawd  r     r     r     r     -     -     -     -     -     -     -     r     -
ops.reward_fulfilment                                rawd  r     ru    ru    r     -     -     -     -     -     -     -     r     -
ops.survey_draw                                      r     r     r     r     -     -     -     -     -     -     -     -     ra    -
ops.survey_handover                                  r     r     r     r     -     -     -     -     -     -     -     -     raw   -
ops.survey_handover_attempt                          r     r     r     r     -     -     -     -     -     -     -     -     ra    -
ops.survey_invitation                                r     r     r     r     -     -     -     -     -     -     -     -     ra    -
ops.survey_measure                                   r     r     r     rawd  -     -     -     -     -     -     -     -     r     -
ops.sync_run                                         rawd  r     r     r     r     -     -     -     s     s     -     -     r     -
ops.sync_watermark                                   rawd  r     r     r     r     -     -     -     -     -     -     -     r     -
ops.webhook_event                                    raw   r     r     r     r     -     -     si    -     -     -     -     r     -
ops.webhook_rejection                                raw   s     s     rw    s     -     -     i     -     -     -     -     rw    -
ops.webhook_rejection_count                          raw   r     r     r     r     -     -     siu   -     -     -     -     r     -
ops.webhook_undeliverable                            raw   -     -     ru    -     -     -     siu   -     -     -     -     rw    -
raw.legacy_file                                      ra    -     -     r     -     -     -     -     -     -     -     -     r     -
raw.records                                          ra    -     -     r     -     -     -     si    -     -     -     -     rw    -
[view]
audit.readable_events                                r     r     r     r     r     -     -     -     -     -     -     s     -     -
mart.activity_fund                                   -     r     r     r     r     -     -     -     -     -     -     -     -     -
mart.fund_allocated_revenue_monthly                  -     r     r     r     r     -     -     -     -     -     -     -     -     -
mart.fund_impact_monthly                             -     r     r     r     r     -     -     -     -     -     -     r     -     -
mart.fund_impact_rows                                -     r     r     r     r     -     -     -     -     -     -     r     -     -
mart.kpi_course_completion_monthly                   -     r     r     r     r     -     -     -     -     -     -     -     -     -
mart.kpi_data_accuracy_monthly                       -     r     r     r     r     -     -     -     -     -     -     -     -     -
mart.kpi_duplicate_rate_monthly                      -     r     r     r     r     -     -     -     -     -     -     -     -     -
mart.kpi_learner_reengagement_monthly                -     r     r     r     r     -     -     -     -     -     -     -     -     -
mart.kpi_learners_also_donors_monthly                -     r     r     r     r     -     -     -     -     -     -     -     -     -
mart.kpi_learners_also_volunteers_monthly            -     r     r     r     r     -     -     -     -     -     -     -     -     -
mart.kpi_referral_conversion_monthly                 -     r     r     r     r     -     -     -     -     -     -     -     -     -
mart.kpi_referral_reward_redemption_monthly          -     r     r     r     r     -     -     -     -     -     -     -     -     -
mart.kpi_referral_support_tickets_monthly            -     r     r     r     r     -     -     -     -     -     -     -     -     -
mart.kpi_referral_volume_monthly                     -     r     r     r     r     -     -     -     -     -     -     -     -     -
mart.outreach_decision                               -     r     r     r     r     -     -     -     -     -     -     -     -     -
mart.outreach_eligible                               -     -     -     r     -     -     r     -     -     -     -     -     r     -
mart.survey_invitation_outcome                       r     -     -     r     -     -     -     -     -     -     -     -     -     -
mart.survey_nonresponse                              r     r     r     r     r     -     -     -     -     -     -     -     -     -
mart.survey_response_rate_weekly                     r     r     r     r     r     -     -     -     -     -     -     -     -     -
mart.survey_scores_weekly                            r     r     r     r     r     -     -     -     -     -     -     -     -     -
ops.allocation_amount                                -     r     r     r     r     -     -     -     -     -     -     -     -     -
ops.crm_gift_landed                                  r     -     -     -     -     -     -     -     -     -     -     -     -     -
ops.donation_trace                                   r     -     r     r     r     -     -     -     r     -     -     -     -     -
ops.gift_allocation                                  -     r     r     r     r     -     -     -     -     -     -     -     -     -
ops.identity_review_queue                            r     r     r     r     -     -     -     -     -     -     -     -     -     -
ops.reconciliation_quarantine                        r     -     -     r     r     -     -     -     r     -     -     -     -     -
ops.reward_fulfilment_queue                          r     r     r     r     r     -     -     -     -     -     -     -     -     -
ops.survey_response_invitation                       r     r     r     r     -     -     -     -     -     -     -     -     -     -
ops.unallocated_gift                                 -     r     r     r     r     -     -     -     -     -     -     -     -     -
[definer function]
audit.chain_event()                                  -     -     -     -     -     -     -     -     -     -     -     -     x     -
audit.personal_image_seals()                         x     x     x     x     x     -     -     -     -     -     x     -     x     -
audit.record_change()                                -     -     -     -     -     -     -     -     -     -     -     -     x     -
audit.record_event(text,text,text,jsonb,jsonb,jsonb) x     x     x     x     x     -     -     -     x     x     x     -     x     x
audit.seal()                                         x     x     x     x     x     -     -     -     x     x     x     x     x     -
audit.seal_pending()                                 -     -     -     -     -     -     -     -     -     -     -     -     x     -
core.erase_support_tickets()                         -     -     -     -     -     -     -     -     -     -     -     -     x     -
ops.apply_identity_decision()                        -     -     -     -     -     -     -     -     -     -     -     -     x     -
ops.approve_donation_correction(bigint,text)         -     -     -     -     x     -     -     -     -     -     -     -     x     -
ops.approve_program_change(bigint,text)              -     -     -     -     x     -     -     -     -     -     -     -     x     -
ops.decide_donation_correction(bigint,boolean,text)  -     -     -     -     -     -     -     -     -     -     -     -     x     -
ops.decide_program_change(bigint,boolean,text)       -     -     -     -     -     -     -     -     -     -     -     -     x     -
ops.draw_survey_sample(text,text,date,numeric,integer,text) x     -     -     x     -     -     -     -     -     -     -     -     x     -
ops.find_course(text)                                -     -     -     -     -     -     -     -     -     -     -     -     x     -
ops.latest_applied_correction(uuid)                  x     -     x     x     x     -     -     -     -     -     -     -     x     -
ops.merge_people(uuid,uuid,text,text,bigint,double precision,te x     -     -     x     -     -     -     -     -     x     -     -     x     -
ops.program_funds_checked(jsonb)                     -     -     -     -     -     -     -     -     -     -     -     -     x     -
ops.record_survey_handover(uuid,text,text,text,text,text,text) x     -     -     x     -     -     -     -     -     -     -     -     x     -
ops.reject_donation_correction(bigint,text)          -     -     -     -     x     -     -     -     -     -     -     -     x     -
ops.reject_program_change(bigint,text)               -     -     -     -     x     -     -     -     -     -     -     -     x     -
ops.request_donation_correction(text,jsonb,text)     -     -     x     x     x     -     -     -     -     -     -     -     x     -
ops.request_program_change(text,text,text,jsonb,date,text) -     -     x     x     x     -     -     -     -     -     -     -     x     -
ops.survey_handover_due(text,text,date,integer,text) x     -     -     x     -     -     -     -     -     -     -     -     x     -
privacy.create_login(text,text,text,uuid)            -     -     -     x     -     -     -     -     -     -     -     -     -     x
privacy.current_partner()                            x     x     x     x     x     x     -     -     -     -     -     -     x     -
privacy.erase_person(uuid,text)                      -     -     -     x     -     -     -     -     -     -     -     -     x     -
privacy.erase_person_ops(uuid,text)                  -     -     -     x     -     -     -     -     -     -     -     -     x     -
privacy.register_member(uuid,text,date)              -     -     -     -     -     x     -     -     -     -     -     -     x     -
"""


def expected_cells() -> dict[tuple[str, str], dict[str, str]]:
    cells: dict[tuple[str, str], dict[str, str]] = {}
    kind = ""
    for line in EXPECTED.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("["):
            kind = line.strip("[]")
            continue
        words = line.split()  # the name may hold spaces (a function's "double precision" argument)
        name, privileges = " ".join(words[: -len(ROLES)]), words[-len(ROLES) :]
        assert name and len(privileges) == len(ROLES), f"{line}: one cell per role in ROLES"
        cells[(kind, name)] = {
            role: "" if cell == "-" else cell for role, cell in zip(ROLES, privileges, strict=True)
        }
    return cells


EXPECTED_CELLS = expected_cells()


def _column(role: str) -> dict[tuple[str, str], str]:
    return {key: cells[role] for key, cells in EXPECTED_CELLS.items()}


@pytest.fixture
def matrix(warehouse_url: str) -> role_matrix.RoleMatrix:
    with psycopg.connect(warehouse_url) as conn:
        return role_matrix.read(conn)


def test_every_application_role_has_an_expectation(matrix: role_matrix.RoleMatrix) -> None:
    """A role added to the warehouse (a new grant to a new role) fails here until its column is declared."""
    assert sorted(matrix.roles) == sorted(ROLES)


def test_the_catalog_grants_exactly_the_expected_matrix(matrix: role_matrix.RoleMatrix) -> None:
    actual = {key: {role: cells.get(role, "") for role in ROLES} for key, cells in matrix.cells.items()}
    differences = [
        f"{kind} {name} {role}: expected {EXPECTED_CELLS.get((kind, name), {}).get(role, '') or '-'},"
        f" granted {actual.get((kind, name), {}).get(role, '') or '-'}"
        for kind, name in sorted(set(actual) | set(EXPECTED_CELLS))
        for role in ROLES
        if actual.get((kind, name), {}).get(role, "") != EXPECTED_CELLS.get((kind, name), {}).get(role, "")
    ]
    assert differences == []


def test_the_matrix_notices_a_grant_too_many(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        conn.execute("GRANT UPDATE ON core.enrollment TO cdp_viewer")
        granted = role_matrix.read(conn).cells[("table", "core.enrollment")]["cdp_viewer"]
        conn.rollback()
    assert granted == "rw" != EXPECTED_CELLS[("table", "core.enrollment")]["cdp_viewer"]


def test_the_document_shows_the_catalog(matrix: role_matrix.RoleMatrix) -> None:
    rendered = role_matrix.render_markdown(matrix)
    if os.environ.get("CDP_WRITE_ROLE_MATRIX") == "1":
        DOCUMENT.write_text(rendered)
    assert DOCUMENT.read_text() == rendered, (
        "regenerate it: CDP_WRITE_ROLE_MATRIX=1 (see the module docstring)"
    )


# --- what the names say ------------------------------------------------------------------------------------
# Rules over EXPECTED (which the catalog matches, above): a cell that breaks one is a role doing more than its
# name says, whatever a migration granted.

WRITES = set("aiwud")
ADMIN_ONLY_OR_PIPELINE = {"raw.records", "raw.legacy_file", "core.consent", "ops.webhook_undeliverable",
                          "ops.legacy_clean_record", "ops.referral_legacy"}  # fmt: skip
PARTNER_SCOPED = {"core.organization", "core.organization_membership", "core.enrollment", "core.course_completion",
                  "core.certificate", "core.person", "core.course"}  # fmt: skip
# Definer functions that only read (what a viewer may run).
READING_FUNCTIONS = {
    "audit.personal_image_seals()",
    "privacy.current_partner()",
    "ops.latest_applied_correction(uuid)",
}


def test_no_role_truncates_references_triggers_or_creates() -> None:
    offending = {
        (name, role): cell
        for (kind, name), cells in EXPECTED_CELLS.items()
        for role, cell in cells.items()
        if set(cell) & {"D", "x", "t", "C"} and kind != "definer function"
    }
    assert offending == {}


# What any staff role may run: appending its own application event (attributed to its login) and chaining
# what a busy lock left unsealed. Neither changes a row that exists.
AUDIT_FUNCTIONS = {"audit.record_event(text,text,text,jsonb,jsonb,jsonb)", "audit.seal()"}


def test_a_viewer_only_reads() -> None:
    viewer = _column("cdp_viewer")
    writes = {key: cell for key, cell in viewer.items() if set(cell) & WRITES}
    assert writes == {}
    assert {
        name for (kind, name), cell in viewer.items() if kind == "definer function" and cell
    } <= READING_FUNCTIONS | AUDIT_FUNCTIONS


def test_the_webhook_intake_touches_only_the_intake_tables() -> None:
    webhook = {key: cell for key, cell in _column("cdp_webhook").items() if cell and key[0] != "schema"}
    assert {name for (kind, name) in webhook} <= {
        "ops.webhook_event", "ops.webhook_rejection", "ops.webhook_rejection_count", "ops.webhook_undeliverable",
        "raw.records",  # a signed delivery lands as a raw record, like a synced one
    }  # fmt: skip
    assert not any("d" in cell for cell in webhook.values())


def test_outreach_reads_the_outreach_list_and_nothing_else() -> None:
    outreach = {key: cell for key, cell in _column("cdp_outreach").items() if cell and key[0] != "schema"}
    assert outreach == {("view", "mart.outreach_eligible"): "r"}


def test_a_partner_touches_only_partner_scoped_tables_and_writes_only_its_cohorts() -> None:
    partner = {key: cell for key, cell in _column("cdp_partner").items() if cell and key[0] != "schema"}
    tables = {name for (kind, name) in partner if kind in ("table", "view")}
    # audit: only personal_column, the list of which columns are personal (the chain's triggers run as the
    # definer role, so a partner's own writes need no read of the trail).
    assert tables - PARTNER_SCOPED == {"audit.personal_column"}
    writes = {
        name: cell
        for (kind, name), cell in partner.items()
        if set(cell) & WRITES and not name.startswith("audit.")
    }
    assert writes == {"core.organization_membership": "ru"}
    functions = {name for (kind, name) in partner if kind == "definer function"}
    assert functions == {"privacy.current_partner()", "privacy.register_member(uuid,text,date)"}


def test_only_admin_and_the_pipeline_read_raw_payloads_and_consent() -> None:
    readers = {
        name: {role for role, cell in cells.items() if "r" in cell and role not in OWNER_ROLES}
        for (kind, name), cells in EXPECTED_CELLS.items()
        if name in ADMIN_ONLY_OR_PIPELINE
    }
    assert readers == dict.fromkeys(ADMIN_ONLY_OR_PIPELINE, {"cdp_admin", "cdp_loader"})
    # others read at most some columns ('s'): the webhook intake the ids its inserts return (the personal
    # columns are checked one by one below)
    partial = {
        (name, role)
        for (kind, name), cells in EXPECTED_CELLS.items()
        if name in ADMIN_ONLY_OR_PIPELINE
        for role, cell in cells.items()
        if "s" in cell and role not in OWNER_ROLES
    }
    assert partial == {("raw.records", "cdp_webhook"), ("ops.webhook_undeliverable", "cdp_webhook")}
    personal_images = EXPECTED_CELLS[("table", "audit.personal_image")]
    assert {role for role, cell in personal_images.items() if "r" in cell and role not in OWNER_ROLES} == {
        "cdp_admin"
    }


def test_only_admin_loader_and_finance_delete() -> None:
    deleters = {
        role for cells in EXPECTED_CELLS.values() for role, cell in cells.items() if "d" in cell
    } - set(OWNER_ROLES)
    assert deleters == {"cdp_admin", "cdp_loader", "cdp_finance", "cdp_dedupe"}
    finance = {name for (kind, name), cell in _column("cdp_finance").items() if "d" in cell}
    assert finance == {"ops.finance_ledger_account", "ops.reconciliation_explanation"}
    # The dedupe deletes only its own working rows (a retried run's plan and a re-scored shard's pairs).
    dedupe = {name for (kind, name), cell in _column("cdp_dedupe").items() if "d" in cell}
    assert dedupe == {"ops.dedupe_run", "ops.identity_pair_score"}


def test_only_finance_approves_corrections() -> None:
    for function in (
        "ops.approve_donation_correction(bigint,text)",
        "ops.reject_donation_correction(bigint,text)",
    ):
        cells = EXPECTED_CELLS[("definer function", function)]
        assert {role for role, cell in cells.items() if cell and role not in OWNER_ROLES} == {"cdp_finance"}


# --- personal data, column by column and through real logins -----------------------------------------------

# Who may read a personal column (audit.personal_column's list, and all of core.consent) in core: admin and the
# pipeline; editors and partners (their own learners, under row-level security) also read people's names.
NAME_READERS = {"cdp_admin", "cdp_loader", "cdp_editor", "cdp_partner", "cdp_dedupe"}
# The nightly dedupe reads what it compares (names, birth date, email, phone, the household's address) and each
# person's source records (to pick the survivor), and nothing else personal: no consent, no payloads, no survey
# answers or tickets.
DEDUPE_COMPARES = {
    "core.person.given_name",
    "core.person.family_name",
    "core.person.date_of_birth",
    "core.person.email",
    "core.person.email_normalized",
    "core.person.phone",
    "core.person.phone_e164",
    "core.household.street",
    "core.household.locality",
    "core.household.postcode",
    "core.household.region",
    "core.person_source_id.source_record_id",
}  # which source records a person has: the survivor
PERSONAL_COLUMN_READERS = """
    SELECT c.table_name || '.' || c.column_name, r.rolname
    FROM (SELECT table_name, column_name FROM audit.personal_column
          UNION SELECT 'core.consent', attname FROM pg_attribute
                WHERE attrelid = 'core.consent'::regclass AND attnum > 0 AND NOT attisdropped) AS c
    CROSS JOIN pg_roles r
    WHERE r.rolname = ANY (%s) AND has_column_privilege(r.oid, c.table_name::regclass, c.column_name, 'SELECT')"""


def test_personal_columns_are_read_only_by_the_roles_allowed_to(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        readers: dict[str, set[str]] = {}
        for column, role in conn.execute(PERSONAL_COLUMN_READERS, (list(APPLICATION_ROLES),)).fetchall():
            readers.setdefault(column, set()).add(role)
    allowed = {column: NAME_READERS if column in ("core.person.given_name", "core.person.family_name")
               else {"cdp_admin", "cdp_loader", "cdp_dedupe"} if column in DEDUPE_COMPARES
               else {"cdp_admin", "cdp_loader"} for column in readers}  # fmt: skip
    assert {
        column: roles - allowed[column] for column, roles in readers.items() if roles - allowed[column]
    } == {}
    assert {"core.person.email", "core.consent.status", "core.survey_response.answers"} <= set(readers)


# Every path to personal data outside core (and core's own), and the roles that get through it.
PERSONAL_DATA_PATHS: dict[str, set[str]] = {
    "SELECT email, phone, date_of_birth FROM core.person": {"cdp_admin", "cdp_loader", "cdp_dedupe"},
    "SELECT status, source_record_id FROM core.consent": {"cdp_admin", "cdp_loader"},
    "SELECT payload FROM raw.records": {"cdp_admin", "cdp_loader"},
    "SELECT payload FROM ops.quarantine": {"cdp_admin", "cdp_loader"},
    "SELECT reason_value FROM ops.quarantine": {"cdp_admin", "cdp_loader"},
    "SELECT message FROM ops.crm_push_error": {"cdp_admin", "cdp_loader"},
    "SELECT body FROM ops.webhook_rejection": {"cdp_admin", "cdp_loader"},
    "SELECT body FROM ops.webhook_undeliverable": {"cdp_admin", "cdp_loader"},
    "SELECT survivor_before, absorbed_before FROM ops.identity_merge": {"cdp_admin", "cdp_loader"},
    "SELECT note FROM ops.identity_decision": {
        "cdp_admin",
        "cdp_loader",
        "cdp_editor",
    },  # the reviewers' notes
    # The evidence pack verifies the chain, which recomputes each row's hash from the whole row (revision 0029):
    # the row images' public part (personal columns sit in audit.personal_image, which it cannot read).
    "SELECT before, after, details FROM audit.audit_events": {"cdp_admin", "cdp_loader", "cdp_evidence"},
    "SELECT fields FROM audit.personal_image": {"cdp_admin"},
    "SELECT email FROM mart.outreach_eligible": {"cdp_admin", "cdp_outreach"},
    # Masked for readers without the column in core (test_personal_data_paths checks the values).
    "SELECT left_email FROM ops.identity_review_queue": {
        "cdp_admin",
        "cdp_loader",
        "cdp_viewer",
        "cdp_editor",
    },
    "SELECT after FROM audit.readable_events": {
        "cdp_admin",
        "cdp_loader",
        "cdp_viewer",
        "cdp_editor",
        "cdp_finance",
    },
}


def test_real_logins_get_through_exactly_the_paths_their_role_may(warehouse_url: str, logins) -> None:
    with psycopg.connect(warehouse_url) as conn:
        organization = conn.execute(
            "INSERT INTO core.organization (name) VALUES ('Partner') RETURNING organization_id::text"
        ).fetchone()[0]
    outcomes: dict[str, set[str]] = {statement: set() for statement in PERSONAL_DATA_PATHS}
    for role in APPLICATION_ROLES:
        url = logins(role, organization if role == "cdp_partner" else None)
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in PERSONAL_DATA_PATHS:
                try:
                    conn.execute(statement)
                except psycopg.errors.InsufficientPrivilege:
                    continue
                outcomes[statement].add(role)
    assert outcomes == PERSONAL_DATA_PATHS
