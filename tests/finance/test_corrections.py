"""Donation corrections: only cdp_finance approves or rejects, another login than the one that asked,
nobody else changes what finance reconciles, every step is audited. Requests and decisions are made by real
logins (privacy.create_login); refusals by role use SET ROLE from the migration's superuser."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import psycopg
import pytest

from cdp import cli
from cdp.finance import corrections

FTID = "FT-2024-0000042"


def login_of(url: str) -> str:
    return unquote(urlsplit(url).username or "")


@pytest.fixture
def donation(warehouse_url: str, books) -> str:
    books.donation(FTID, 4000, campaign="spring")
    return FTID


def _donation(url: str) -> tuple[int, str]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT amount_minor, campaign FROM core.donation WHERE financial_transaction_id = %s", (FTID,)
        ).fetchone()


def _events(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT action, before, after, details ->> 'approved_by' FROM audit.audit_events"
            " WHERE action LIKE 'correction.%' ORDER BY seq"
        ).fetchall()


def test_only_the_finance_role_can_approve_a_correction(warehouse_url: str, donation: str, logins) -> None:
    junior, fin = logins("cdp_editor"), logins("cdp_finance")
    # The seed's story: a junior staff member keys 40.00 as 400.00 in a correction.
    correction = corrections.request(
        junior, donation, {"amount_minor": 40000}, "donor says amount wrong", person="junior"
    )

    for role in ("cdp_editor", "cdp_admin", "cdp_viewer", "cdp_loader", "cdp_partner"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            corrections.approve(warehouse_url, correction, person="someone", role=role)
    assert _donation(warehouse_url) == (4000, "spring")

    assert corrections.approve(fin, correction, "checked the receipt", person="fin") == "applied"
    assert _donation(warehouse_url) == (40000, "spring")
    assert _events(warehouse_url) == [
        ("correction.requested", {"amount_minor": 4000}, {"amount_minor": 40000}, None),
        ("correction.applied", {"amount_minor": 4000}, {"amount_minor": 40000}, login_of(fin)),
    ]
    with psycopg.connect(warehouse_url) as conn:
        row_change = conn.execute(
            "SELECT before -> 0 ->> 'amount_minor', after -> 0 ->> 'amount_minor' FROM audit.audit_events"
            " WHERE action = 'update' AND entity_type = 'core.donation'"
        ).fetchall()
    assert row_change == [("4000", "40000")]  # the row trigger recorded the change too
    rows = corrections.list_corrections(fin, person="fin")
    assert [(r["status"], r["requested_by"], r["decided_by"]) for r in rows] == [
        ("applied", login_of(junior), login_of(fin))
    ]


def test_the_approval_step_catches_a_wrong_correction(warehouse_url: str, donation: str, logins) -> None:
    correction = corrections.request(
        warehouse_url, donation, {"amount_minor": 40000}, "typo?", person="junior", role="cdp_editor"
    )

    assert (
        corrections.reject(logins("cdp_finance"), correction, "receipt says 40.00", person="fin")
        == "rejected"
    )

    assert _donation(warehouse_url) == (4000, "spring")
    assert [event[0] for event in _events(warehouse_url)] == ["correction.requested", "correction.rejected"]
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="already rejected"):
        corrections.approve(logins("cdp_finance"), correction, person="fin2")


def test_finance_cannot_approve_its_own_request(warehouse_url: str, donation: str, logins) -> None:
    fin, fin2 = logins("cdp_finance"), logins("cdp_finance")
    correction = corrections.request(fin, donation, {"campaign": "autumn"}, "wrong appeal", person="fin")
    # The attack of issue 15: the same login claims another name for the approval.
    for claimed in ("fin", "someone-else"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="another login must decide"):
            corrections.approve(fin, correction, person=claimed)
    with psycopg.connect(fin) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SET cdp.actor = 'fin2'")
        conn.execute("SELECT ops.approve_donation_correction(%s, 'mine')", (correction,))
    assert _donation(warehouse_url) == (4000, "spring")
    assert corrections.approve(fin2, correction, person="fin") == "applied"
    assert _donation(warehouse_url) == (4000, "autumn")
    with psycopg.connect(warehouse_url) as conn:
        requested_by, decided_by = conn.execute(
            "SELECT requested_by, decided_by FROM ops.donation_correction WHERE correction_id = %s",
            (correction,),
        ).fetchone()
        claimed = conn.execute(
            "SELECT session_role, actor, details ->> 'approved_by' FROM audit.audit_events"
            " WHERE action = 'correction.applied'"
        ).fetchone()
    assert (requested_by, decided_by) == (login_of(fin), login_of(fin2))
    assert claimed == (login_of(fin2), "fin", login_of(fin2))  # the claimed name sits beside the login


def test_the_table_refuses_a_decision_by_the_requesting_login(warehouse_url: str, donation: str) -> None:
    correction = corrections.request(
        warehouse_url, donation, {"campaign": "autumn"}, "x", person="j", role="cdp_editor"
    )
    with psycopg.connect(warehouse_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("ALTER TABLE ops.donation_correction DISABLE TRIGGER refuse_direct_write")
        conn.execute(
            "UPDATE ops.donation_correction SET status = 'rejected', decided_by = requested_by"
            " WHERE correction_id = %s",
            (correction,),
        )


RECONCILED = {
    "amount_minor": "1",
    "status": "'failed'",
    "person_id": "gen_random_uuid()",
    "financial_transaction_id": "'FT-FORGED'",
    "campaign": "'gala'",
    "received_at": "now()",
}


@pytest.mark.parametrize("column", sorted(RECONCILED))
def test_finance_and_admin_logins_cannot_update_what_finance_reconciles(
    warehouse_url: str, donation: str, logins, column: str
) -> None:
    for role in ("cdp_finance", "cdp_admin", "cdp_editor"):
        with psycopg.connect(logins(role)) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                f"UPDATE core.donation SET {column} = {RECONCILED[column]} WHERE financial_transaction_id = %s",
                (FTID,),
            )
    # Even a role later granted UPDATE meets the trigger (person_id has a foreign key: a real person).
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute("INSERT INTO core.person (person_id) VALUES ('00000000-0000-0000-0000-00000000abcd')")
        conn.execute("GRANT UPDATE ON core.donation TO cdp_admin")
        conn.execute("SET ROLE cdp_admin")
        value = "'00000000-0000-0000-0000-00000000abcd'" if column == "person_id" else RECONCILED[column]
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="approved correction"):
            conn.execute(
                f"UPDATE core.donation SET {column} = {value} WHERE financial_transaction_id = %s", (FTID,)
            )
        conn.execute("RESET ROLE")
        conn.execute("REVOKE UPDATE ON core.donation FROM cdp_admin")


def test_nobody_else_changes_donation_amounts(warehouse_url: str, donation: str) -> None:
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        for role in ("cdp_editor", "cdp_finance", "cdp_viewer", "cdp_admin"):
            conn.execute(f"SET ROLE {role}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(
                    "UPDATE core.donation SET amount_minor = 1 WHERE financial_transaction_id = %s", (FTID,)
                )
            conn.execute("RESET ROLE")
        # Even a role that is later granted UPDATE (0005's matrix may) meets the trigger.
        conn.execute("GRANT UPDATE, DELETE ON core.donation TO cdp_admin")
        conn.execute("SET ROLE cdp_admin")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="approved correction"):
            conn.execute(
                "UPDATE core.donation SET amount_minor = 1 WHERE financial_transaction_id = %s", (FTID,)
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="approved correction"):
            conn.execute("DELETE FROM core.donation WHERE financial_transaction_id = %s", (FTID,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="approved correction"):
            conn.execute(
                "UPDATE core.donation SET campaign = 'gala' WHERE financial_transaction_id = %s", (FTID,)
            )
        # Forging an approved correction for the trigger does not work either: the table refuses direct writes.
        conn.execute("RESET ROLE")
        conn.execute("GRANT INSERT, UPDATE ON ops.donation_correction TO cdp_admin")
        conn.execute("SET ROLE cdp_admin")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="changed only through"):
            conn.execute(
                "INSERT INTO ops.donation_correction (donation_id, financial_transaction_id, requested_by,"
                " requested_role, reason, before, after, status) SELECT donation_id, %s, 'x', 'x', 'x',"
                " '{}', '{\"amount_minor\": 1}', 'approved' FROM core.donation",
                (FTID,),
            )
        conn.execute("RESET ROLE")
        # The sync (cdp_loader) lands what the processor says.
        conn.execute("SET ROLE cdp_loader")
        conn.execute(
            "UPDATE core.donation SET amount_minor = 4100 WHERE financial_transaction_id = %s", (FTID,)
        )
        conn.execute("RESET ROLE")
    assert _donation(warehouse_url) == (4100, "spring")


def test_a_request_against_a_changed_donation_is_not_applied(
    warehouse_url: str, donation: str, logins
) -> None:
    correction = corrections.request(
        warehouse_url, donation, {"amount_minor": 4500}, "missing tip", person="junior", role="cdp_editor"
    )
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE core.donation SET amount_minor = 4100 WHERE financial_transaction_id = %s", (FTID,)
        )
    with pytest.raises(psycopg.errors.SerializationFailure, match="changed since"):
        corrections.approve(logins("cdp_finance"), correction, person="fin")
    assert _donation(warehouse_url) == (4100, "spring")


def test_requests_are_checked(warehouse_url: str, donation: str) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="cannot be corrected"):
        corrections.request(warehouse_url, donation, {"person_id": None}, "x", person="j", role="cdp_editor")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="changes nothing"):
        corrections.request(
            warehouse_url, donation, {"amount_minor": 4000}, "x", person="j", role="cdp_editor"
        )
    with pytest.raises(psycopg.errors.NoDataFound):
        corrections.request(warehouse_url, "FT-NOPE", {"amount_minor": 1}, "x", person="j", role="cdp_editor")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        corrections.request(warehouse_url, donation, {"amount_minor": 1}, "x", person="p", role="cdp_partner")
    with pytest.raises(ValueError, match="integer minor units"):
        corrections.parse_changes(["amount_minor=40.00"])


def test_cli_requests_and_refuses_by_role(
    warehouse_url: str,
    donation: str,
    logins,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = ["finance", "correction"]
    junior, fin = logins("cdp_editor"), logins("cdp_finance")

    monkeypatch.setenv("CDP_WAREHOUSE_URL", junior)
    assert (
        cli.main(
            [*base, "request", FTID, "--set", "amount_minor=40000", "--reason", "typo", "--by", "junior"]
        )
        == 0
    )
    assert cli.main([*base, "approve", "1", "--by", "junior"]) == 4
    assert "refused: permission denied for function approve_donation_correction" in capsys.readouterr().out
    monkeypatch.setenv("CDP_WAREHOUSE_URL", fin)
    assert cli.main([*base, "approve", "1", "--by", "fin", "--note", "ok"]) == 0
    assert cli.main([*base, "list"]) == 0
    out = capsys.readouterr().out
    assert (
        "correction 1 applied" in out
        and '1\tapplied\tFT-2024-0000042\t{"amount_minor": 4000} -> {"amount_minor": 40000}' in out
    )
    assert _donation(warehouse_url) == (40000, "spring")


def test_cli_without_role_never_acts_as_the_superuser(
    warehouse_url: str, donation: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CDP_WAREHOUSE_URL", warehouse_url)  # the migration's superuser
    base = ["finance", "correction"]
    assert cli.main([*base, "request", FTID, "--set", "amount_minor=1", "--reason", "typo"]) == 2
    assert "is a superuser: connect as your own login" in capsys.readouterr().out
    assert cli.main([*base, "list"]) == 2
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("SELECT count(*) FROM ops.donation_correction").fetchone()[0] == 0
    # Named, the role's rights apply (and a request is all an editor may do).
    assert (
        cli.main(
            [*base, "request", FTID, "--set", "amount_minor=1", "--reason", "typo", "--role", "cdp_editor"]
        )
        == 0
    )


def test_a_sync_re_landing_the_old_value_keeps_the_correction(
    warehouse_url: str, donation: str, logins
) -> None:
    correction = corrections.request(
        warehouse_url, donation, {"amount_minor": 4500, "campaign": "gala"}, "tip missing", person="junior",
        role="cdp_editor",
    )  # fmt: skip
    corrections.approve(logins("cdp_finance"), correction, person="fin")
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute("SET ROLE cdp_loader")
        # The overlap window re-reads the charge: Stripe still says 40.00 and no campaign change.
        conn.execute(
            "UPDATE core.donation SET amount_minor = 4000, campaign = 'spring' WHERE financial_transaction_id = %s",
            (FTID,),
        )
        assert _donation(warehouse_url) == (4500, "gala")
        # Stripe itself changed the amount: that lands.
        conn.execute(
            "UPDATE core.donation SET amount_minor = 4700 WHERE financial_transaction_id = %s", (FTID,)
        )
    assert _donation(warehouse_url) == (4700, "gala")


def test_refunds_are_reconciled_too_and_change_only_by_the_sync(
    warehouse_url: str, donation: str, logins
) -> None:
    """Finance (and admin) cannot rewrite a refund's amount, status or charge directly (revision 0020); the sync
    still can, and the approved correction of the donation still applies."""
    with psycopg.connect(warehouse_url) as conn:
        conn.execute(
            "INSERT INTO core.refund (donation_id, financial_transaction_id, charge_id, amount_minor, currency, status,"
            " created_at, source, source_record_id) SELECT donation_id, financial_transaction_id, source_record_id,"
            " 1000, 'USD', 'succeeded', now(), 'stripe', 're_1' FROM core.donation WHERE financial_transaction_id = %s",
            (FTID,),
        )
    changes = ("amount_minor = 1", "status = 'failed'", "charge_id = 'ch_other'")
    for role in ("cdp_finance", "cdp_admin"):
        with psycopg.connect(logins(role), autocommit=True) as conn:
            for change in changes:
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(f"UPDATE core.refund SET {change} WHERE source_record_id = 're_1'")
    with psycopg.connect(warehouse_url, autocommit=True) as conn:  # as the sync's role
        conn.execute("SET ROLE cdp_loader")
        conn.execute("UPDATE core.refund SET status = 'failed' WHERE source_record_id = 're_1'")
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("SELECT amount_minor, status FROM core.refund").fetchone() == (1000, "failed")

    junior, fin = logins("cdp_editor"), logins("cdp_finance")
    correction = corrections.request(
        junior, donation, {"amount_minor": 4500}, "receipt says 45", person="junior"
    )
    assert corrections.approve(fin, correction, "checked the receipt", person="fin") == "applied"
    assert _donation(warehouse_url) == (4500, "spring")
