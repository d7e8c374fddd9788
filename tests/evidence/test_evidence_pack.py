"""The auditor's evidence pack (issue 19, part 5), on a real warehouse: corrections with requester and approver,
the same bytes when nothing changed, the privilege section and the access changes following a grant, a broken
audit chain reported as failed, a month without a reconciliation said so, and all of it as the pack's own
least-privileged login."""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg
import pytest
from psycopg import sql

from cdp import audit, cli
from cdp.evidence.pack import write_pack
from cdp.finance import corrections, programs
from cdp.finance.reconcile import reconcile_month
from cdp.warehouse import Actor, connect

ACTOR = Actor("evidence-test")
NOW = datetime.now(UTC)
# The trail stamps events with the time they happen: the month under audit is this one.
MONTH = f"{NOW:%Y-%m}"
PREVIOUS = f"{date(NOW.year - (NOW.month == 1), (NOW.month - 2) % 12 + 1, 1):%Y-%m}"


def login_of(url: str) -> str:
    return unquote(urlsplit(url).username or "")


def _rows(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / name).open(newline="") as handle:
        return list(csv.DictReader(handle))


def _json(folder: Path, name: str) -> dict:
    return json.loads((folder / name).read_text())


def _bytes(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _gift(url: str, ftid: str, amount: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO core.donation (financial_transaction_id, amount_minor, currency, received_at, status,"
            " refunded_minor, campaign, source, source_record_id)"
            " VALUES (%s, %s, 'USD', %s, 'succeeded', 0, 'spring', 'stripe', %s)",
            (ftid, amount, NOW, f"ch_{ftid}"),
        )


def _without_updated_at(changed: str) -> str:
    """The changed fields but the row's own updated_at (its trigger moves it on every update)."""
    return "; ".join(part for part in changed.split("; ") if not part.startswith("updated_at: "))


@pytest.fixture
def planted(warehouse_url: str, logins) -> dict[str, str]:
    """Two gifts; one corrected (asked by a junior, approved by finance), one correction rejected, and one
    manual edit straight in SQL with no review."""
    _gift(warehouse_url, "FT-1", 4000)
    _gift(warehouse_url, "FT-2", 2500)
    junior, fin = logins("cdp_editor"), logins("cdp_finance")
    applied = corrections.request(
        junior, "FT-1", {"amount_minor": 40000}, "donor says 400.00", person="junior"
    )
    corrections.approve(fin, applied, "checked the receipt", person="fin")
    rejected = corrections.request(junior, "FT-2", {"campaign": "autumn"}, "wrong campaign?", person="junior")
    corrections.reject(fin, rejected, "the receipt says spring", person="fin")
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute("UPDATE core.donation SET fee_minor = 99 WHERE financial_transaction_id = 'FT-2'")
        conn.execute(
            "INSERT INTO core.course (source, source_record_id, title) VALUES ('moodle', '7', 'Python')"
        )
    # A course put in a program: asked by the junior, approved by finance (an allocation change).
    mapped = programs.request_course(junior, "moodle:7", "Digital skills", date(2023, 1, 1), "grant agreement",
                                     person="junior")  # fmt: skip
    programs.approve(fin, mapped, "checked the agreement", person="fin")
    return {
        "junior": login_of(junior),
        "fin": login_of(fin),
        "applied": str(applied),
        "rejected": str(rejected),
        "mapped": str(mapped),
    }


def test_the_pack_lists_the_corrections_with_requester_and_approver_and_every_donation_change(
    warehouse_url: str, planted: dict[str, str], tmp_path: Path, anchor_file: Path
) -> None:
    pack = write_pack(warehouse_url, MONTH, tmp_path, actor=ACTOR, anchor_file=anchor_file)

    folder = tmp_path / f"evidence-{MONTH}"
    assert pack.folder == folder
    decided = [
        (row["correction_id"], row["financial_transaction_id"], row["status"], row["requested_by"],
         row["decided_by"], row["decision_note"])
        for row in _rows(folder, "changes/donation_corrections.csv")
    ]  # fmt: skip
    assert decided == [
        (planted["applied"], "FT-1", "applied", planted["junior"], planted["fin"], "checked the receipt"),
        (
            planted["rejected"],
            "FT-2",
            "rejected",
            planted["junior"],
            planted["fin"],
            "the receipt says spring",
        ),
    ]
    updates = [
        (
            row["financial_transaction_id"],
            _without_updated_at(row["changed"]),
            row["review"],
            row["requested_by"],
            row["approved_by"],
        )
        for row in _rows(folder, "changes/donation_changes.csv")
        if row["operation"] == "update"
    ]
    assert updates == [
        ("FT-1", "amount_minor: 4000 -> 40000", f"correction {planted['applied']}", planted["junior"],
         planted["fin"]),
        ("FT-2", "fee_minor:  -> 99", "none: a direct write by the login", "", ""),
    ]  # fmt: skip
    inserts = {row["financial_transaction_id"] for row in _rows(folder, "changes/donation_changes.csv")
               if row["operation"] == "insert"}  # fmt: skip
    assert inserts == {"FT-1", "FT-2"}
    # Allocations: the program change with who asked and who decided, and the mapping row it wrote.
    assert [
        (row["change_id"], row["kind"], row["program"], row["status"], row["requested_by"], row["decided_by"])
        for row in _rows(folder, "changes/program_changes.csv")
    ] == [(planted["mapped"], "course", "Digital skills", "applied", planted["junior"], planted["fin"])]
    mapped = [(row["table"], row["operation"]) for row in _rows(folder, "changes/allocation_changes.csv")]
    assert ("core.program_course", "insert") in mapped, mapped
    # Every file is in SHA256SUMS with its hash.
    sums = dict(reversed(line.split("  ", 1)) for line in (folder / "SHA256SUMS").read_text().splitlines())
    assert sums == {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in sums}
    assert set(sums) == set(pack.files) and "privileges/privileges.csv" in sums


def test_writing_the_pack_again_gives_the_same_bytes(
    warehouse_url: str, planted: dict[str, str], tmp_path: Path, anchor_file: Path
) -> None:
    reconcile_month(warehouse_url, MONTH, actor=ACTOR)
    with connect(warehouse_url, ACTOR, autocommit=True) as conn:
        audit.export_head(conn, anchor_file)
    write_pack(warehouse_url, PREVIOUS, tmp_path, actor=ACTOR, anchor_file=anchor_file)
    write_pack(warehouse_url, MONTH, tmp_path, actor=ACTOR, anchor_file=anchor_file)
    first = _bytes(tmp_path / f"evidence-{MONTH}")

    write_pack(warehouse_url, MONTH, tmp_path, actor=ACTOR, anchor_file=anchor_file)

    assert _bytes(tmp_path / f"evidence-{MONTH}") == first
    with psycopg.connect(warehouse_url) as conn:
        snapshots = conn.execute(
            "SELECT month, count(*) FROM ops.privilege_snapshot GROUP BY month"
        ).fetchall()
    assert {f"{month:%Y-%m}": n for month, n in snapshots} == {PREVIOUS: 1, MONTH: 1}
    # the data changed (a new correction): the pack changes
    corrections.request(warehouse_url, "FT-2", {"amount_minor": 2600}, "typo", person="x", role="cdp_editor")
    write_pack(warehouse_url, MONTH, tmp_path, actor=ACTOR, anchor_file=anchor_file)
    again = _bytes(tmp_path / f"evidence-{MONTH}")
    assert again["changes/donation_corrections.csv"] != first["changes/donation_corrections.csv"]
    assert again["privileges/privileges.csv"] == first["privileges/privileges.csv"]


def test_the_privileges_and_access_changes_follow_a_grant(
    warehouse_url: str, tmp_path: Path, anchor_file: Path, logins
) -> None:
    write_pack(warehouse_url, PREVIOUS, tmp_path, actor=ACTOR, anchor_file=anchor_file)
    write_pack(warehouse_url, MONTH, tmp_path, actor=ACTOR, anchor_file=anchor_file)
    folder = tmp_path / f"evidence-{MONTH}"
    before = _bytes(folder)
    assert _rows(folder, "access_changes/access_changes.csv") == []
    cell = {
        (row["object"], row["grantee"]): row["privileges"]
        for row in _rows(folder, "privileges/privileges.csv")
    }
    assert cell[("core.donation", "cdp_viewer")] == "r"
    assert cell[("core.donation", "cdp_finance")] == "r"

    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute("GRANT UPDATE ON core.donation TO cdp_viewer")
    viewer = login_of(logins("cdp_viewer"))
    write_pack(warehouse_url, MONTH, tmp_path, actor=ACTOR, anchor_file=anchor_file)

    after = _bytes(folder)
    assert after["privileges/privileges.csv"] != before["privileges/privileges.csv"]
    cell = {
        (row["object"], row["grantee"]): row["privileges"]
        for row in _rows(folder, "privileges/privileges.csv")
    }
    assert cell[("core.donation", "cdp_viewer")] == "rw"
    assert cell[("core.donation", viewer)] == "rw"  # the login inherits its role's grant
    principals = {row["name"]: row for row in _rows(folder, "privileges/principals.csv")}
    assert principals[viewer]["login"] == "true" and principals[viewer]["member_of"] == "cdp_viewer"
    changes = {(row["change"], row["principal"], row["object"]): (row["before"], row["after"])
               for row in _rows(folder, "access_changes/access_changes.csv")}  # fmt: skip
    assert changes[("privilege_changed", "cdp_viewer", "table core.donation")] == ("r", "rw")
    assert changes[("login_created", viewer, "")] == ("", "member of cdp_viewer")
    assert changes[("membership_granted", viewer, "cdp_viewer")] == ("", "member")
    events = [(row["action"], row["entity_id"]) for row in _rows(folder, "access_changes/access_events.csv")]
    assert ("create_login", viewer) in events
    snapshots = _json(folder, "access_changes/snapshots.json")
    assert snapshots["compared"] and snapshots["baseline"]["month"] == PREVIOUS

    # A closed month keeps its own snapshot: today's catalog does not rewrite it.
    previous_privileges = (tmp_path / f"evidence-{PREVIOUS}" / "privileges/privileges.csv").read_bytes()
    write_pack(warehouse_url, PREVIOUS, tmp_path, actor=ACTOR, anchor_file=anchor_file)
    assert (
        tmp_path / f"evidence-{PREVIOUS}" / "privileges/privileges.csv"
    ).read_bytes() == previous_privileges


def test_a_broken_audit_chain_is_reported_as_failed(
    warehouse_url: str, planted: dict[str, str], tmp_path: Path, anchor_file: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("CDP_WAREHOUSE_URL", warehouse_url)
    assert cli.main(["audit", "evidence", "--month", MONTH, "--out", str(tmp_path)]) == 0
    assert _json(tmp_path / f"evidence-{MONTH}", "audit_chain/verification.json")["verification"] == "passed"
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # what a superuser could do
        conn.execute(
            "UPDATE audit.audit_events SET after = '[{\"amount_minor\": 4000}]'"
            " WHERE seq = (SELECT min(seq) FROM audit.audit_events WHERE action = 'update')"
        )

    assert cli.main(["audit", "evidence", "--month", MONTH, "--out", str(tmp_path)]) == 1

    folder = tmp_path / f"evidence-{MONTH}"
    verification = _json(folder, "audit_chain/verification.json")
    assert verification["verification"] == "FAILED"
    assert "does not match its hash" in verification["problem"] and verification["first_bad_seq"]
    assert "verification **FAILED**" in (folder / "README.md").read_text()
    assert "audit chain BROKEN" in capsys.readouterr().err


def test_a_month_without_a_reconciliation_run_says_so(
    warehouse_url: str, tmp_path: Path, anchor_file: Path
) -> None:
    pack = write_pack(warehouse_url, MONTH, tmp_path, actor=ACTOR, anchor_file=anchor_file)

    folder = tmp_path / f"evidence-{MONTH}"
    assert pack.reconciliation == "missing"
    sign_off = _json(folder, "reconciliation/sign_off.json")
    assert sign_off["signed_off"] is False and sign_off["status"] == "no reconciliation run"
    assert f"**No reconciliation run exists for {MONTH}**" in (folder / "README.md").read_text()
    assert not (folder / "reconciliation/totals.csv").exists()

    reconcile_month(warehouse_url, MONTH, actor=ACTOR)
    write_pack(warehouse_url, MONTH, tmp_path, actor=ACTOR, anchor_file=anchor_file)
    sign_off = _json(folder, "reconciliation/sign_off.json")
    assert (
        sign_off["status"] == "passed" and sign_off["signed_off"] is True and sign_off["runs_in_month"] == 1
    )
    assert _rows(folder, "reconciliation/totals.csv") == []  # no gift in the month: nothing to total


def test_the_pack_is_written_by_its_own_login_which_reads_no_core_table(
    warehouse_url: str, planted: dict[str, str], tmp_path: Path, anchor_file: Path, logins
) -> None:
    _gift(warehouse_url, "FT-3", 1000)
    reconcile_month(warehouse_url, MONTH, actor=ACTOR)
    evidence = logins("cdp_evidence")
    write_pack(evidence, MONTH, tmp_path, actor=ACTOR, anchor_file=anchor_file)
    # This month is still open: the pack's own snapshot event moved its head. The anchor after the task (the
    # DAG's callback, or the CLI's) covers it.
    with connect(warehouse_url, ACTOR, autocommit=True) as conn:
        audit.export_head(conn, anchor_file)

    pack = write_pack(evidence, MONTH, tmp_path, actor=ACTOR, anchor_file=anchor_file)

    # Reviewed changes: two donation corrections and one program change.
    assert pack.chain_ok and pack.corrections == 3 and pack.reconciliation == "failed"
    folder = tmp_path / f"evidence-{MONTH}"
    anchored = _json(folder, "audit_chain/verification.json")["anchored_head"]
    assert anchored["matches_the_chain"] is True
    differences = {row["financial_transaction_id"] for row in _rows(folder, "reconciliation/differences.csv")}
    assert {"FT-1", "FT-2", "FT-3"} <= differences  # no Stripe or ledger side: every gift differs
    with psycopg.connect(evidence) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT 1 FROM core.donation")
    with psycopg.connect(evidence) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE ops.privilege_snapshot SET digest = digest")


def test_service_logins_made_by_cdp_warehouse_logins_are_access_events(
    warehouse_url: str, tmp_path: Path, anchor_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDP_MIGRATIONS_URL", warehouse_url)
    for variable in ("PIPELINE", "WEBHOOK", "RECONCILE", "DEDUPE", "EVIDENCE", "FUNDER_REPORT"):
        monkeypatch.setenv(f"CDP_{variable}_PASSWORD", f"{variable.lower()}-password-0123")
    try:
        assert cli.main(["warehouse", "logins"]) == 0
        assert cli.main(["warehouse", "logins"]) == 0  # again: the passwords set anew, recorded as such
        write_pack(warehouse_url, MONTH, tmp_path, actor=ACTOR, anchor_file=anchor_file)
    finally:
        with psycopg.connect(warehouse_url, autocommit=True) as conn:
            for login in cli.SERVICE_LOGINS:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(login)))

    events = [
        (row["entity_id"], json.loads(row["details"])["created"])
        for row in _rows(tmp_path / f"evidence-{MONTH}", "access_changes/access_events.csv")
        if row["action"] == "ensure_login"
    ]
    assert sorted(events) == sorted([(login, True) for login in cli.SERVICE_LOGINS] +
                                    [(login, False) for login in cli.SERVICE_LOGINS])  # fmt: skip
    principals = {row["name"]: row["member_of"] for row in _rows(tmp_path / f"evidence-{MONTH}",
                                                                 "privileges/principals.csv")}  # fmt: skip
    assert principals["cdp_evidence_run"] == "cdp_evidence"
    assert principals["cdp_funder_report_run"] == "cdp_funder_report"
