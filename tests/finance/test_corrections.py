"""Donation corrections: only cdp_finance approves or rejects, nobody else changes donation money, every
step is audited. Roles are the real ones from 0001, taken with SET ROLE."""

from __future__ import annotations

import psycopg
import pytest

from cdp import cli
from cdp.finance import corrections

FTID = "FT-2024-0000042"


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


def test_only_the_finance_role_can_approve_a_correction(warehouse_url: str, donation: str) -> None:
    # The seed's story: a junior staff member keys 40.00 as 400.00 in a correction.
    correction = corrections.request(
        warehouse_url, donation, {"amount_minor": 40000}, "donor says amount wrong", person="junior",
        role="cdp_editor",
    )  # fmt: skip

    for role in ("cdp_editor", "cdp_admin", "cdp_viewer", "cdp_loader", "cdp_partner"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            corrections.approve(warehouse_url, correction, person="someone", role=role)
    assert _donation(warehouse_url) == (4000, "spring")

    assert corrections.approve(
        warehouse_url, correction, "checked the receipt", person="fin", role="cdp_finance"
    ) == ("applied")
    assert _donation(warehouse_url) == (40000, "spring")
    assert _events(warehouse_url) == [
        ("correction.requested", {"amount_minor": 4000}, {"amount_minor": 40000}, None),
        ("correction.applied", {"amount_minor": 4000}, {"amount_minor": 40000}, "fin"),
    ]
    with psycopg.connect(warehouse_url) as conn:
        row_change = conn.execute(
            "SELECT before -> 0 ->> 'amount_minor', after -> 0 ->> 'amount_minor' FROM audit.audit_events"
            " WHERE action = 'update' AND entity_type = 'core.donation'"
        ).fetchall()
    assert row_change == [("4000", "40000")]  # the row trigger recorded the change too
    rows = corrections.list_corrections(warehouse_url, person="fin", role="cdp_finance")
    assert [(r["status"], r["requested_by"], r["decided_by"]) for r in rows] == [("applied", "junior", "fin")]


def test_the_approval_step_catches_a_wrong_correction(warehouse_url: str, donation: str) -> None:
    correction = corrections.request(
        warehouse_url, donation, {"amount_minor": 40000}, "typo?", person="junior", role="cdp_editor"
    )

    assert corrections.reject(
        warehouse_url, correction, "receipt says 40.00", person="fin", role="cdp_finance"
    ) == ("rejected")

    assert _donation(warehouse_url) == (4000, "spring")
    assert [event[0] for event in _events(warehouse_url)] == ["correction.requested", "correction.rejected"]
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="already rejected"):
        corrections.approve(warehouse_url, correction, person="fin2", role="cdp_finance")


def test_finance_cannot_approve_its_own_request(warehouse_url: str, donation: str) -> None:
    correction = corrections.request(
        warehouse_url, donation, {"campaign": "autumn"}, "wrong appeal", person="fin", role="cdp_finance"
    )
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="someone else must decide"):
        corrections.approve(warehouse_url, correction, person="fin", role="cdp_finance")
    assert corrections.approve(warehouse_url, correction, person="fin2", role="cdp_finance") == "applied"
    assert _donation(warehouse_url) == (4000, "autumn")


def test_nobody_else_changes_donation_amounts(warehouse_url: str, donation: str) -> None:
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        for role in ("cdp_editor", "cdp_finance", "cdp_viewer"):
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
    assert _donation(warehouse_url) == (4100, "gala")


def test_a_request_against_a_changed_donation_is_not_applied(warehouse_url: str, donation: str) -> None:
    correction = corrections.request(
        warehouse_url, donation, {"amount_minor": 4500}, "missing tip", person="junior", role="cdp_editor"
    )
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE core.donation SET amount_minor = 4100 WHERE financial_transaction_id = %s", (FTID,)
        )
    with pytest.raises(psycopg.errors.SerializationFailure, match="changed since"):
        corrections.approve(warehouse_url, correction, person="fin", role="cdp_finance")
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
    warehouse_url: str, donation: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CDP_WAREHOUSE_URL", warehouse_url)
    base = ["finance", "correction"]

    assert cli.main([*base, "request", FTID, "--set", "amount_minor=40000", "--reason", "typo", "--by", "junior",
                     "--role", "cdp_editor"]) == 0  # fmt: skip
    assert cli.main([*base, "approve", "1", "--by", "junior", "--role", "cdp_editor"]) == 4
    assert "refused: permission denied for function approve_donation_correction" in capsys.readouterr().out
    assert cli.main([*base, "approve", "1", "--by", "fin", "--role", "cdp_finance", "--note", "ok"]) == 0
    assert cli.main([*base, "list", "--role", "cdp_finance"]) == 0
    out = capsys.readouterr().out
    assert (
        "correction 1 applied" in out
        and '1\tapplied\tFT-2024-0000042\t{"amount_minor": 4000} -> {"amount_minor": 40000}' in out
    )
    assert _donation(warehouse_url) == (40000, "spring")


def test_a_sync_re_landing_the_old_value_keeps_the_correction(warehouse_url: str, donation: str) -> None:
    correction = corrections.request(
        warehouse_url, donation, {"amount_minor": 4500, "campaign": "gala"}, "tip missing", person="junior",
        role="cdp_editor",
    )  # fmt: skip
    corrections.approve(warehouse_url, correction, person="fin", role="cdp_finance")
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
